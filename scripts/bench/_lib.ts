/**
 * @module
 * Shared bench plumbing: free ports, starting servers and waiting for them, wrk runs, and
 * percentile/summary helpers. Benchmarks print figures; they never pass or fail.
 */
export const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
export const DENO = `${ROOT}/node_modules/.bin/deno`;
export const APPRUN = `${ROOT}/bin/apprun`;

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

/** Requests per second from one wrk run. */
export async function wrk(port: number, seconds: number, connections: number): Promise<number> {
  const out = await new Deno.Command("wrk", {
    args: ["-t1", `-c${connections}`, `-d${seconds}s`, `http://127.0.0.1:${port}/`],
    stdout: "piped",
    stderr: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const m = /Requests\/sec:\s+([\d.]+)/.exec(text);
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(text);
  if (errors) console.error(`  wrk: ${errors[0]}`);
  return m ? Number(m[1]) : NaN;
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

/** A hello-world server to compare: apprun's engine or a baseline. */
export interface HelloServer {
  name: string;
  start(port: number): Promise<Started>;
}

/** apprun (the worker alone, no supervisor), Deno.serve, and node:http when Node is here. */
export function helloServers(): HelloServer[] {
  const apprun: HelloServer = {
    name: "apprun",
    start: (p) =>
      start(
        APPRUN,
        [
          "serve",
          `${ROOT}/examples/hello.ts`,
          "--no-supervisor",
          "--port",
          String(p),
          "--host",
          "127.0.0.1",
          "--idle-timeout",
          "600s",
        ],
        p,
        { APPRUN_LOG: "error" },
      ),
  };
  const deno: HelloServer = {
    name: "Deno.serve",
    start: (p) =>
      start(DENO, ["run", "-A", `${ROOT}/scripts/bench/servers/deno_serve.ts`, String(p)], p),
  };
  const node: HelloServer = {
    name: "node:http",
    start: (p) => start("node", [`${ROOT}/scripts/bench/servers/node_http.mjs`, String(p)], p),
  };
  return has("node") ? [apprun, deno, node] : [apprun, deno];
}
