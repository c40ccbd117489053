/**
 * Start time: from spawn to the first answer, for `apprun serve --no-supervisor` (what systemd
 * runs: also the floor of every cold handoff) and for `deno run` of the same Deno.serve hello
 * world, and node:http for scale. Runs are interleaved; prints each run and the medians, of the
 * wall time and of the CPU time the server process used until then (user + system, all
 * threads, across apprun's exec: steadier than wall time on a busy machine). The client
 * connects every millisecond until something accepts, then sends one request.
 *
 *   deno run -A scripts/bench/start.ts [--runs 7]
 */
import { parseArgs } from "node:util";
import {
  APPRUN,
  apprunServeArgs,
  APPS,
  cpuMicros,
  DENO,
  fmt,
  freePort,
  has,
  median,
  ROOT,
} from "./_lib.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { runs: { type: "string", default: "7" } },
});
const runs = Number(values.runs);
const HELLO = APPS.hello.file;

const commands: {
  name: string;
  command(port: number): [string, string[], Record<string, string>];
}[] = [
  {
    name: "apprun",
    command: (
      p,
    ) => [APPRUN, [...apprunServeArgs(HELLO, p), "--", String(p)], { APPRUN_LOG: "warn" }],
  },
  // The worker command apprun execs, started directly: what the CLI and the exec add.
  {
    name: "worker alone",
    command: (p) => [
      DENO,
      ["run", "--quiet", "-A", "--preload", `${ROOT}/runtime/worker/entry.ts`, HELLO, String(p)],
      {
        APPRUN_WORKER: JSON.stringify({
          mode: "serve",
          handler: HELLO,
          port: p,
          host: "127.0.0.1",
          unix: [],
          drainTimeoutMs: 1000,
          limits: {},
          logLevel: "warn",
        }),
        DENO_LOG: "deno=warn",
      },
    ],
  },
  { name: "Deno.serve", command: (p) => [DENO, ["run", "-A", HELLO, String(p)], {}] },
];
if (has("node")) {
  commands.push({
    name: "node:http",
    command: (p) => ["node", [`${ROOT}/scripts/bench/servers/node_http.mjs`, String(p)], {}],
  });
}

const REQUEST = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n");

/** Spawns the server; returns ms until its first complete answer, and its CPU ms until then. */
async function timeToFirstAnswer(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  port: number,
) {
  const t0 = performance.now();
  const child = new Deno.Command(cmd, { args, env, stdin: "null", stdout: "null", stderr: "null" })
    .spawn();
  try {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await Deno.connect({ port, hostname: "127.0.0.1" });
      } catch {
        if (performance.now() - t0 > 20_000) throw new Error(`${cmd}: no answer in 20 s`);
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
      try {
        await conn.write(REQUEST);
        const buf = new Uint8Array(4096);
        const n = await conn.read(buf);
        if (n !== null && n > 0) {
          return { wall: performance.now() - t0, cpu: cpuMicros(child.pid) / 1000 };
        }
      } catch {
        // accepted before it could answer (a listener passed early): ask again
      } finally {
        conn.close();
      }
    }
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
}

const results = new Map<string, { wall: number; cpu: number }[]>(
  commands.map((c) => [c.name, []]),
);
// One untimed run each first: the module caches (transpiled TypeScript, npm) are warm for all.
for (const c of commands) {
  const port = freePort();
  const [cmd, args, env] = c.command(port);
  await timeToFirstAnswer(cmd, args, env, port);
}
for (let r = 0; r < runs; r++) {
  const line: string[] = [];
  for (let i = 0; i < commands.length; i++) {
    const c = commands[(i + r) % commands.length];
    const port = freePort();
    const [cmd, args, env] = c.command(port);
    const t = await timeToFirstAnswer(cmd, args, env, port);
    results.get(c.name)!.push(t);
    line.push(`${c.name} ${fmt(t.wall, 1)} ms (CPU ${fmt(t.cpu)} ms)`);
  }
  console.log(`run ${r + 1} (load ${Deno.loadavg()[0].toFixed(1)}): ${line.join(", ")}`);
}
console.log(`\nspawn → first answer, median of ${runs}:`);
const wall = (name: string) => median(results.get(name)!.map((t) => t.wall));
const cpu = (name: string) => median(results.get(name)!.map((t) => t.cpu));
for (const name of results.keys()) {
  console.log(`  ${name.padEnd(12)} ${fmt(wall(name), 1)} ms, CPU ${fmt(cpu(name))} ms`);
}
console.log(
  `apprun / Deno.serve: ${fmt(wall("apprun") / wall("Deno.serve"), 2)}× wall, ` +
    `${fmt(cpu("apprun") / cpu("Deno.serve"), 2)}× CPU`,
);
