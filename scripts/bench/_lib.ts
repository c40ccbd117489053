/**
 * Shared bench plumbing: free ports, the servers compared (apprun, Deno.serve, node:http) and
 * the apps they serve, wrk runs with their latency and the server's CPU time per request, and
 * percentile/summary helpers. Benchmarks print figures; they never pass or fail.
 */
export const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
export const DENO = `${ROOT}/node_modules/.bin/deno`;
export const APPRUN = `${ROOT}/bin/apprun`;
const SERVERS = `${ROOT}/scripts/bench/servers`;

export function freePort(): number {
  const l = Deno.listen({ port: 0, hostname: "127.0.0.1" });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Waits until something accepts on `port`. */
export async function waitForPort(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      (await Deno.connect({ port, hostname: "127.0.0.1" })).close();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`nothing listens on ${port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** A started server process; `stop()` ends it. */
export interface Started {
  child: Deno.ChildProcess;
  port: number;
  stop(): Promise<void>;
}

export async function start(
  cmd: string,
  args: string[],
  port: number,
  env: Record<string, string> = {},
): Promise<Started> {
  const child = new Deno.Command(cmd, { args, env, stdin: "null", stdout: "null", stderr: "null" })
    .spawn();
  await waitForPort(port);
  return {
    child,
    port,
    async stop() {
      try {
        child.kill("SIGKILL");
      } catch {
        // gone
      }
      await child.status;
    },
  };
}

/** Whether a command exists on PATH. */
export function has(cmd: string): boolean {
  return (Deno.env.get("PATH") ?? "").split(":").some((d) => {
    try {
      return Deno.statSync(`${d}/${cmd}`).isFile;
    } catch {
      return false;
    }
  });
}

/**
 * The apps every server serves: `hello` (hello world) and `hono` (a Hono route returning JSON
 * from a path parameter and a header). apprun and Deno.serve run the very same file.
 */
export const APPS = {
  hello: { file: `${SERVERS}/hello.ts`, path: "/" },
  hono: { file: `${SERVERS}/hono.ts`, path: "/users/42" },
} as const;
export type AppName = keyof typeof APPS;

/** A server to compare, able to serve each app. */
export interface BenchServer {
  /** "apprun", "Deno.serve", "node:http"; with --parallel N also "apprun ×N", "deno serve ×N". */
  name: string;
  start(port: number, app: AppName): Promise<Started>;
}

/** apprun (the worker alone, no supervisor), Deno.serve, and node:http when Node is here (`parallel`: see parallelServers). */
export function benchServers(parallel?: number): BenchServer[] {
  if (parallel !== undefined) return parallelServers(parallel);
  const apprun: BenchServer = {
    name: "apprun",
    start: (p, app) =>
      start(APPRUN, [...apprunServeArgs(APPS[app].file, p), "--", String(p)], p, {
        APPRUN_LOG: "error",
      }),
  };
  const deno: BenchServer = {
    name: "Deno.serve",
    start: (p, app) => start(DENO, ["run", "-A", APPS[app].file, String(p)], p),
  };
  const node: BenchServer = {
    name: "node:http",
    start: (p, app) => start("node", [`${SERVERS}/node_http.mjs`, String(p), app], p),
  };
  return has("node") ? [apprun, deno, node] : [apprun, deno];
}

/**
 * `--parallel n`: apprun on one loop, apprun on n loops, and `deno serve --parallel` on n
 * (`DENO_JOBS`), which takes a default export (servers/default_export.ts).
 */
function parallelServers(n: number): BenchServer[] {
  const env = { APPRUN_LOG: "error" };
  const apprun = (p: number, app: AppName, more: string[]) =>
    start(APPRUN, [...apprunServeArgs(APPS[app].file, p), ...more, "--", String(p)], p, env);
  return [
    { name: "apprun", start: (p, app) => apprun(p, app, []) },
    { name: `apprun ×${n}`, start: (p, app) => apprun(p, app, ["--parallel", String(n)]) },
    {
      name: `deno serve ×${n}`,
      start: (p, app) =>
        start(
          DENO,
          [
            "serve",
            "-A",
            "--parallel",
            "--port",
            String(p),
            "--host",
            "127.0.0.1",
            `${SERVERS}/default_export.ts`,
          ],
          p,
          { DENO_JOBS: String(n), BENCH_APP: app },
        ),
    },
  ];
}

/** `apprun serve FILE` as the worker alone (what systemd runs), on 127.0.0.1:`port`. */
export function apprunServeArgs(file: string, port: number): string[] {
  return [
    "serve",
    file,
    "--no-supervisor",
    "--port",
    String(port),
    "--host",
    "127.0.0.1",
    "--idle-timeout",
    "600s",
  ];
}

/** CPU time (user + system, all threads) a process has used so far, in µs. */
export function cpuMicros(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the command name (which may hold spaces), from field 3 on: utime is 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks * 10_000; // USER_HZ is 100 on Linux
}

/**
 * CPU time (user + system) of this process's waited-for children so far, in µs: what a wrk run
 * took is the difference across it (nothing else of ours ends meanwhile).
 */
export function childrenCpuMicros(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[13]) + Number(fields[14])) * 10_000; // cutime, cstime (USER_HZ 100)
}

/** One wrk run against a server. */
export interface WrkResult {
  rps: number;
  requests: number;
  /** 99th percentile latency, ms. */
  p99Ms: number;
  /** Server CPU time per request, µs (NaN without a pid). */
  cpuPerRequestUs: number;
  /** wrk's own CPU time over the run, as a share of the whole machine (every core), %. */
  wrkCpuPct: number;
  errors: string | null;
}

/** Runs wrk (one thread) on `path`, measuring the server process `pid`'s CPU meanwhile. */
export async function wrk(opts: {
  port: number;
  path?: string;
  seconds: number;
  connections: number;
  pid?: number;
}): Promise<WrkResult> {
  const cpu0 = opts.pid === undefined ? NaN : cpuMicros(opts.pid);
  const wrk0 = childrenCpuMicros(), t0 = performance.now();
  const out = await new Deno.Command("wrk", {
    args: [
      "-t1",
      `-c${opts.connections}`,
      `-d${opts.seconds}s`,
      "--latency",
      `http://127.0.0.1:${opts.port}${opts.path ?? "/"}`,
    ],
    stdout: "piped",
    stderr: "null",
  }).output();
  const cpu = opts.pid === undefined ? NaN : cpuMicros(opts.pid) - cpu0;
  const wrkCpu = childrenCpuMicros() - wrk0;
  const wrkCpuPct = (100 * wrkCpu) /
    ((performance.now() - t0) * 1000 * navigator.hardwareConcurrency);
  const text = new TextDecoder().decode(out.stdout);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? NaN);
  const requests = Number(/(\d+) requests in/.exec(text)?.[1] ?? NaN);
  const p99 = /\s99%\s+([\d.]+)(us|ms|s)\b/.exec(text);
  const p99Ms = p99 ? Number(p99[1]) * { us: 0.001, ms: 1, s: 1000 }[p99[2] as "us"] : NaN;
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(text)?.[0] ?? null;
  return { rps, requests, p99Ms, cpuPerRequestUs: cpu / requests, wrkCpuPct, errors };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
}

export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
}

export const fmt = (n: number, digits = 0) => Number.isFinite(n) ? n.toFixed(digits) : "n/a";

/** A WebSocket to the handoff fixture's `/ws` on `port`, once open. */
export function openWs(port: number): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  return new Promise((resolve, reject) => {
    ws.onopen = () => resolve(ws);
    ws.onerror = (e) => reject(new Error(`WebSocket failed: ${(e as ErrorEvent).message}`));
  });
}

/** Sends "n:k" and waits for the echo "k count pid"; returns the pid. */
export function wsEcho(ws: WebSocket, k: number): Promise<number> {
  return new Promise((resolve) => {
    ws.onmessage = (e) => resolve(Number(String(e.data).split(" ")[2]));
    ws.send(`n:${k}`);
  });
}
