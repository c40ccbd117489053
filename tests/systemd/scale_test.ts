/**
 * 10 000 idle keep-alive connections through `systemctl --user restart` of a real systemd 252:
 * the bundle keeps the manager's work constant — NFileDescriptorStore stays at one or two fds,
 * `systemctl show` answers within a second all through the handoff — and every connection is
 * answered by the new process afterwards.
 */
import assert from "node:assert/strict";
import { systemdTest } from "../_systemd.ts";
import { sleep } from "../_poll.ts";
import { installApp } from "../_systemd_app.ts";

const N = 10_000;
const enc = new TextEncoder();
const dec = new TextDecoder();

async function request(conn: Deno.TcpConn, id: string): Promise<string> {
  await conn.write(enc.encode(`GET /r?id=${id} HTTP/1.1\r\nHost: t\r\n\r\n`));
  const buf = new Uint8Array(1024);
  let text = "";
  while (!/\r\n\r\n\S+ \d+$/.test(text)) {
    const n = await conn.read(buf);
    if (n === null) throw new Error(`connection closed waiting for ${id}`);
    text += dec.decode(buf.subarray(0, n));
  }
  return text.split("\r\n\r\n")[1];
}

systemdTest(
  `systemd: ${N} idle connections through systemctl restart, the manager stays responsive`,
  async (m) => {
    const app = await installApp(m);
    const conns: Deno.TcpConn[] = [];
    try {
      for (let i = 0; i < N; i += 500) {
        const batch = await Promise.all(
          Array.from(
            { length: 500 },
            () => Deno.connect({ port: app.port, hostname: "127.0.0.1" }),
          ),
        );
        await Promise.all(batch.map((c, k) => request(c, `a${i + k}`)));
        conns.push(...batch);
      }
      const oldPid = await m.show("app.service", "MainPID");
      // Poll the manager all through the restart: it must never stall.
      let isRestarting = true;
      let slowest = 0, polls = 0, maxStored = 0;
      const polling = (async () => {
        while (isRestarting) {
          const t = performance.now();
          const stored = Number(await m.show("app.service", "NFileDescriptorStore"));
          slowest = Math.max(slowest, performance.now() - t);
          maxStored = Math.max(maxStored, stored);
          polls++;
          await sleep(20); // pacing: a poll every ~20 ms
        }
      })();
      const t0 = performance.now();
      const r = await m.systemctl("restart", "app.service");
      const restartMs = performance.now() - t0;
      isRestarting = false;
      await polling;
      assert.equal(r.code, 0, r.stderr);
      const newPid = await m.show("app.service", "MainPID");
      assert.notEqual(newPid, oldPid);
      const t1 = performance.now();
      const answers = await Promise.all(conns.map((c, i) => request(c, `b${i}`)));
      const answerMs = performance.now() - t1;
      console.log(
        `${N} connections: systemctl restart ${restartMs.toFixed(0)} ms, all answered by the new ` +
          `process ${answerMs.toFixed(0)} ms later; systemctl show: ${polls} polls, slowest ` +
          `${slowest.toFixed(0)} ms, NFileDescriptorStore at most ${maxStored}`,
      );
      assert.equal(answers.length, N);
      const wrong = answers.filter((a, i) => a !== `b${i} ${newPid}`);
      assert.deepEqual(wrong.slice(0, 5), [], "every connection answered by the new pid");
      assert.ok(polls > 0, "the manager was polled during the restart");
      assert.ok(
        slowest < 1000,
        `the manager answered within a second (slowest ${slowest.toFixed(0)} ms)`,
      );
      assert.ok(maxStored <= 2, `the store held at most the bundle (saw ${maxStored})`);
      await m.waitFor("app.service", "NFileDescriptorStore", "0"); // the bundle, removed
    } finally {
      for (const c of conns) c.close();
    }
  },
  { sanitizeResources: false },
);
