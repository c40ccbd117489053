/**
 * Handoff pause under the embedded supervisor: N idle keep-alive connections (default 10, 1000,
 * 10000) plus one probe connection sending requests back to back, through R restarts each. The
 * pause is from the old process's last answer (on the probe) to the new process's first answer
 * on any connection; "all answering" is when every idle connection (each sending one request
 * 5 ms after the restart began) had its answer from the new pid. Where the time goes comes from
 * the processes' own log lines.
 *
 *   deno run -A scripts/bench/handoff.ts [--counts 10,1000,10000] [--restarts 5]
 */
import { parseArgs } from "node:util";
import { fmt, freePort, median, pct } from "./_lib.ts";
import { startSupervised } from "../e2e/supervised.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    counts: { type: "string", default: "10,1000,10000" },
    restarts: { type: "string", default: "5" },
  },
});
const counts = values.counts!.split(",").map(Number);
const restarts = Number(values.restarts);
const enc = new TextEncoder();
const dec = new TextDecoder();

/** One keep-alive connection that sends `GET /r?id=…` and reads `<id> <pid>`. */
class Client {
  #conn: Deno.TcpConn;
  #buf = new Uint8Array(65536);
  #n = 0;
  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }
  static async open(port: number): Promise<Client> {
    return new Client(await Deno.connect({ port, hostname: "127.0.0.1" }));
  }
  async request(): Promise<number> {
    const id = `r${this.#n++}`;
    await this.#conn.write(enc.encode(`GET /r?id=${id} HTTP/1.1\r\nHost: b\r\n\r\n`));
    let text = "";
    for (;;) {
      const n = await this.#conn.read(this.#buf);
      if (n === null) throw new Error("closed by the server");
      text += dec.decode(this.#buf.subarray(0, n));
      const end = text.indexOf("\r\n\r\n");
      const len = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? -1);
      if (end >= 0 && len >= 0 && text.length >= end + 4 + len) {
        const [answer, pid] = text.slice(end + 4, end + 4 + len).split(" ");
        if (answer !== id) throw new Error(`asked ${id}, got ${answer}`);
        return Number(pid);
      }
    }
  }
  close(): void {
    this.#conn.close();
  }
}

async function inBatches<T>(n: number, size: number, f: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i += size) {
    out.push(
      ...await Promise.all(Array.from({ length: Math.min(size, n - i) }, (_, k) => f(i + k))),
    );
  }
  return out;
}

interface Round {
  pause: number;
  allAnswering: number;
  handedOffMs: number;
  readyLine: string;
}

async function measure(n: number): Promise<Round[]> {
  const port = freePort();
  const sup = await startSupervised({
    handler: "tests/fixtures/handoff.ts",
    port,
    args: ["--idle-timeout", "600s"],
  });
  const rounds: Round[] = [];
  try {
    const idle = await inBatches(n, 500, () => Client.open(port));
    await inBatches(n, 500, (i) => idle[i].request());
    const probe = await Client.open(port);
    for (let r = 0; r < restarts; r++) {
      let lastOld = 0, firstNew = 0;
      const oldPid = await probe.request();
      let isRunning = true;
      const probing = (async () => {
        while (isRunning) {
          const pid = await probe.request();
          const t = performance.now();
          if (pid === oldPid) lastOld = t;
          else if (firstNew === 0) firstNew = t;
        }
      })();
      await new Promise((res) => setTimeout(res, 50));
      const logMark = sup.log().length;
      const t0 = performance.now();
      sup.reload();
      await new Promise((res) => setTimeout(res, 5));
      const answered = await inBatches(n, 2000, async (i) => {
        const pid = await idle[i].request();
        if (pid === oldPid) throw new Error(`idle connection ${i} answered by the old process`);
        return performance.now() - t0;
      });
      while (firstNew === 0) await new Promise((res) => setTimeout(res, 5));
      isRunning = false;
      await probing;
      await new Promise((res) => setTimeout(res, 30));
      const fresh = sup.log().slice(logMark);
      // The new process's first byte served, on any connection (the probe's request may wait
      // behind thousands of others that became readable at the same moment).
      const firstServed = Math.min(firstNew, t0 + pct(answered, 0));
      rounds.push({
        pause: firstServed - lastOld,
        allAnswering: pct(answered, 100),
        handedOffMs: Number(
          /handed off \d+ connections as generation \d+ in ([\d.]+) ms/.exec(fresh)?.[1] ?? NaN,
        ),
        readyLine: /resumed \d+ connections[^\n]*/.exec(fresh)?.[0] ?? "",
      });
    }
    for (const c of idle) c.close();
    probe.close();
  } finally {
    await sup.stop();
  }
  return rounds;
}

console.log(`handoff pause under the embedded supervisor (${restarts} restarts per count)\n`);
for (const n of counts) {
  const rounds = await measure(n);
  const pauses = rounds.map((r) => r.pause);
  const all = rounds.map((r) => r.allAnswering);
  console.log(
    `${String(n).padStart(6)} idle: pause p50 ${fmt(median(pauses))} ms, p99 ${
      fmt(pct(pauses, 99))
    } ms, ` +
      `max ${fmt(pct(pauses, 100))} ms; all answering ${fmt(median(all))} ms (max ${
        fmt(pct(all, 100))
      }); ` +
      `old side (SIGTERM → stored) ${fmt(median(rounds.map((r) => r.handedOffMs)), 1)} ms`,
  );
  console.log(
    `         new side, last round: ${
      rounds[rounds.length - 1].readyLine.replace(/^resumed /, "")
    }`,
  );
}
