/**
 * Handoff pause under the embedded supervisor, both paths: warm (SIGHUP: the next worker loads,
 * then takes every connection over from the running one directly) and cold (the control
 * socket's `restart`, as `systemctl restart`: SIGTERM, the bundle through the fdstore, a new
 * process). N idle keep-alive connections (default 10, 1000, 10000 and 100000) plus one probe
 * connection sending requests back to back, R rounds per path, the paths interleaved round by
 * round. The pause is from the old process's last answer (on the probe) to the new process's
 * first answer on any connection; "all answering" is when every idle connection (each sending
 * one request 5 ms after the reload began) had its answer from the new pid. Where the time goes
 * comes from the processes' own log lines. Then S WebSocket sessions (default 1000), the pause
 * seen by a probe session, both paths. Last, the floor: the time to pass N fds between two
 * processes with no JavaScript state at all (fd_floor.py).
 *
 *   deno run -A scripts/bench/handoff.ts [--counts 10,1000,10000,100000] [--rounds 5]
 *                                        [--paths warm,cold] [--ws 1000]
 *
 * A count the open-files limit cannot hold (server and client each need N fds; only a
 * privileged process raises the hard limit) is reported, not run.
 */
import { parseArgs } from "node:util";
import { fmt, freePort, median, openWs, pct, ROOT, wsEcho } from "./_lib.ts";
import { startSupervised, type Supervised } from "../e2e/supervised.ts";
import { raiseFdLimit } from "../../runtime/sys/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    counts: { type: "string", default: "10,1000,10000,100000" },
    rounds: { type: "string", default: "5" },
    paths: { type: "string", default: "warm,cold" },
    ws: { type: "string", default: "1000" },
  },
});
const counts = values.counts!.split(",").map(Number);
const rounds = Number(values.rounds);
const paths = values.paths!.split(",") as Path[];
const wsCount = Number(values.ws);
const enc = new TextEncoder();
const dec = new TextDecoder();
type Path = "warm" | "cold";

/** One keep-alive connection that sends `GET /r?id=…` and reads `<id> <pid>`. */
class Client {
  #conn: Deno.TcpConn;
  #buf = new Uint8Array(4096);
  #n = 0;
  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }
  static async open(port: number, hostname: string): Promise<Client> {
    return new Client(await Deno.connect({ port, hostname }));
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
  path: Path;
  pause: number;
  allAnswering: number;
  oldSide: number;
  oldLine: string;
  newLine: string;
  bundleLine: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One reload or restart; resolves when it was asked for (not when it is done). */
function trigger(sup: Supervised, path: Path): Promise<void> {
  if (path === "warm") {
    sup.reload();
    return Promise.resolve();
  }
  sup.restart().catch((err) => console.error(`restart: ${err}`));
  return Promise.resolve();
}

/** The old side's and the new side's log lines of the handoff that just happened. */
function phases(log: string, path: Path) {
  const oldLine = /handoff: \d+ connections taken out[^\n]*/.exec(log)?.[0] ?? "";
  const bundleLine = /bundle of generation[^\n]*/.exec(log)?.[0] ?? "";
  const oldSide = path === "warm"
    ? /handed \d+ connections to pid \d+ in ([\d.]+) ms/.exec(log)?.[1]
    : /handed off \d+ connections as generation \d+ in ([\d.]+) ms/.exec(log)?.[1];
  const newLine = path === "warm"
    ? /took over \d+ connections from pid \d+[^\n]*/.exec(log)?.[0]
    : /resumed \d+ connections from generation[^\n]*/.exec(log)?.[0];
  return { oldSide: Number(oldSide ?? NaN), oldLine, newLine: newLine ?? "", bundleLine };
}

/** A count the fd limit allows: the server and this client each hold n connections. */
function fits(n: number, limit: number): boolean {
  return n + 512 <= limit;
}

async function measure(n: number): Promise<Round[]> {
  const port = freePort();
  const sup = await startSupervised({
    handler: "tests/fixtures/handoff.ts",
    port,
    host: "0.0.0.0",
    logLevel: "info",
    args: ["--idle-timeout", "600s", "--log-level", "debug"],
  });
  const out: Round[] = [];
  try {
    // Several loopback addresses: one 4-tuple space (~28k ports) would not hold 100k.
    const hosts = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"];
    const idle = await inBatches(n, 500, (i) => Client.open(port, hosts[i % hosts.length]));
    await inBatches(n, 1000, (i) => idle[i].request());
    const probe = await Client.open(port, "127.0.0.1");
    for (let r = 0; r < rounds; r++) {
      for (const path of r % 2 === 0 ? paths : [...paths].reverse()) {
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
        await sleep(50);
        const logMark = sup.log().length;
        await trigger(sup, path);
        // Warm, the next worker loads first (the old one serves meanwhile); cold, a restart
        // begins with SIGTERM: wait for the old one to stop reading before the idle connections
        // ask, so "all answering" measures the handoff.
        const begun = path === "warm" ? /takes over: handing over/ : /SIGTERM: handing off/;
        while (!begun.test(sup.log().slice(logMark))) await sleep(1);
        const t0 = performance.now();
        await sleep(5);
        const answered = await inBatches(n, 4000, async (i) => {
          // A request that reached the old one before it stopped reading is answered there.
          while (await idle[i].request() === oldPid) await sleep(1);
          return performance.now() - t0;
        });
        while (firstNew === 0) await sleep(5);
        isRunning = false;
        await probing;
        // Both sides have logged once the old worker is gone and the new one is main.
        const done = path === "warm" ? /generation \d+ ready: pid \d+, took over/ : /handoff took/;
        while (!done.test(sup.log().slice(logMark))) await sleep(10);
        const fresh = sup.log().slice(logMark);
        const firstServed = Math.min(firstNew, t0 + pct(answered, 0));
        out.push({
          path,
          pause: firstServed - lastOld,
          allAnswering: pct(answered, 100),
          ...phases(fresh, path),
        });
        await sleep(300);
      }
    }
    for (const c of idle) c.close();
    probe.close();
  } catch (err) {
    console.error(`${n} connections: ${err}; the supervisor's last lines:`);
    console.error(sup.log().slice(-4000));
    throw err;
  } finally {
    await sup.stop();
  }
  return out;
}

function report(label: string, rs: Round[]): void {
  for (const path of paths) {
    const mine = rs.filter((r) => r.path === path);
    if (mine.length === 0) continue;
    const pauses = mine.map((r) => r.pause), all = mine.map((r) => r.allAnswering);
    console.log(
      `${label} ${path}: pause p50 ${fmt(median(pauses), 1)} ms, p99 ${fmt(pct(pauses, 99), 1)}` +
        ` ms, max ${fmt(pct(pauses, 100), 1)} ms; all answering p50 ${fmt(median(all))} ms ` +
        `(max ${fmt(pct(all, 100))}); old side ${fmt(median(mine.map((r) => r.oldSide)), 1)} ms`,
    );
    const last = mine.at(-1)!;
    console.log(`         old side, last round: ${last.oldLine.replace(/^handoff: /, "")}`);
    console.log(`         new side, last round: ${last.newLine}`);
    console.log(`                               ${last.bundleLine}`);
  }
}

async function measureWs(n: number): Promise<Round[]> {
  const port = freePort();
  const sup = await startSupervised({
    handler: "tests/fixtures/ws_counter.ts",
    port,
    logLevel: "info",
  });
  const out: Round[] = [];
  const sockets: WebSocket[] = [];
  try {
    sockets.push(...await inBatches(n, 500, () => openWs(port)));
    const probe = sockets[sockets.length - 1];
    for (let r = 0; r < rounds; r++) {
      for (const path of r % 2 === 0 ? paths : [...paths].reverse()) {
        let k = 0;
        const oldPid = await wsEcho(probe, k++);
        let lastOld = 0, firstNew = 0;
        const probing = (async () => {
          while (firstNew === 0) {
            const pid = await wsEcho(probe, k++);
            if (pid === oldPid) lastOld = performance.now();
            else firstNew = performance.now();
          }
        })();
        await sleep(50);
        const logMark = sup.log().length;
        await trigger(sup, path);
        await probing;
        const done = path === "warm" ? /generation \d+ ready: pid \d+, took over/ : /handoff took/;
        while (!done.test(sup.log().slice(logMark))) await sleep(10);
        const closed = sockets.filter((ws) => ws.readyState !== WebSocket.OPEN).length;
        if (closed > 0) console.log(`  ${closed} sessions closed in a ${path} round`);
        out.push({
          path,
          pause: firstNew - lastOld,
          allAnswering: NaN,
          ...phases(sup.log().slice(logMark), path),
        });
        await sleep(300);
      }
    }
  } finally {
    for (const ws of sockets) ws.close();
    await sup.stop();
  }
  return out;
}

const limit = raiseFdLimit();
const load = Deno.loadavg().map((l) => l.toFixed(1)).join(" ");
console.log(
  `handoff pause under the embedded supervisor, ${paths.join(" and ")}, ${rounds} rounds ` +
    `each (load average ${load}, open-files limit ${limit})\n`,
);
for (const n of counts) {
  if (!fits(n, limit)) {
    console.log(
      `${String(n).padStart(6)} idle: not run — each side needs ${n} fds and the open-files ` +
        `limit here is ${limit} (raising the hard limit needs CAP_SYS_RESOURCE)`,
    );
    continue;
  }
  report(`${String(n).padStart(6)} idle`, await measure(n));
}
if (wsCount > 0) report(`${String(wsCount).padStart(6)} ws`, await measureWs(wsCount));
const floor = new Deno.Command("python3", {
  args: [`${ROOT}/scripts/bench/fd_floor.py`, ...counts.map(String)],
  stdout: "piped",
}).outputSync();
console.log(
  "\nfloor: passing N fds between two processes, no JavaScript (fd_floor.py, median of 5):",
);
for (const line of new TextDecoder().decode(floor.stdout).trim().split("\n")) {
  const [n, ...rest] = line.split(" ");
  console.log(`${n.padStart(6)} fds: ${rest.join(" ")}${/^[\d.]+$/.test(rest[0]) ? " ms" : ""}`);
}
console.log(`(load average after: ${Deno.loadavg().map((l) => l.toFixed(1)).join(" ")})`);
