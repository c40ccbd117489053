/**
 * The README's main command (`npm run demo`): starts `apprun serve tests/fixtures/handoff.ts` on a free
 * port (with its embedded supervisor, as on a laptop), keeps one keep-alive connection sending a
 * request every 150 ms while 50 more clients load the server, and reloads the server three times
 * (SIGHUP: a new process takes over through the fdstore). It prints which process answered each
 * request on the one connection — the pid changes, the connection does not — and the load
 * totals: every request answered, none failed.
 */
import { runLoad } from "./e2e/load.ts";
import { startSupervised } from "./e2e/supervised.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function freePort(): number {
  const l = Deno.listen({ port: 0, hostname: "127.0.0.1" });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

const port = Number(Deno.env.get("PORT") ?? freePort());
console.log(`$ apprun serve tests/fixtures/handoff.ts --port ${port}   (answers "<id> <pid>")`);
const server = await startSupervised({ handler: "tests/fixtures/handoff.ts", port });
try {
  const conn = await Deno.connect({ port, hostname: "127.0.0.1" });
  const local = (conn.localAddr as Deno.NetAddr).port;
  console.log(`one keep-alive connection from port ${local}; 50 more clients in a loop\n`);
  let stop!: () => void;
  const until = new Promise<void>((r) => stop = r);
  const load = runLoad({ port, connections: 50, until });
  const buf = new Uint8Array(4096);
  const ask = async (n: number) => {
    await conn.write(enc.encode(`GET /r?id=demo-${n} HTTP/1.1\r\nHost: demo\r\n\r\n`));
    let text = "";
    while (!/\r\n\r\n.*\d+$/s.test(text)) {
      const got = await conn.read(buf);
      if (got === null) throw new Error("the server closed the connection");
      text += dec.decode(buf.subarray(0, got));
    }
    return text.split("\r\n\r\n")[1].split(" ")[1];
  };
  let lastPid = "";
  for (let n = 1; n <= 24; n++) {
    if (n % 6 === 0 && n < 24) {
      console.log(`   ── reload: SIGHUP to the supervisor (pid ${server.pid}) ──`);
      server.reload();
    }
    const pid = await ask(n);
    const note = lastPid && pid !== lastPid ? "  ← a new process, same connection" : "";
    console.log(`request ${String(n).padStart(2)} on port ${local}: answered by pid ${pid}${note}`);
    lastPid = pid;
    await new Promise((r) => setTimeout(r, 150));
  }
  conn.close();
  stop();
  const r = await load;
  const failed = r.resets + r.earlyCloses + r.wrongAnswers + r.badStatus + r.errors.length;
  console.log(
    `\nload: ${r.answered}/${r.requests} requests answered across 3 reloads, ${failed} failed, ` +
      `${r.resets} connections reset`,
  );
  const pauses = [...server.log().matchAll(/handoff took (\d+) ms/g)].map((m) => m[1]);
  console.log(
    `supervisor: each handoff took ${
      pauses.join(", ")
    } ms (SIGTERM to the old worker → READY=1 of the new)`,
  );
} finally {
  await server.stop();
}
