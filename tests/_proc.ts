/**
 * @module
 * Child processes for tests: the repo's paths, `spawn()` (a running `Proc` whose output is
 * collected and can be waited on), `run()` (a command to completion), `serveFixture()` (a real
 * `apprun serve` on port 0), whether a pid is alive, and temp dirs removed at the end of a
 * scope. Nothing here mocks a process; each function says who ends what it starts. Sockets
 * are `_net.ts`'s, waiting is `_poll.ts`'s.
 */
import { withDeadline } from "./_poll.ts";

export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
export const APPRUN = `${ROOT}/bin/apprun`;
/** The pinned Deno (npm package "deno"). */
export const DENO = `${ROOT}/node_modules/.bin/deno`;
export const FIXTURES = `${ROOT}/tests/fixtures`;

const enc = new TextEncoder();

interface LogWaiter {
  re: RegExp;
  resolve: (m: RegExpMatchArray) => void;
  reject: (err: Error) => void;
}

/**
 * A running child process whose stdout and stderr are collected into one log. The caller ends
 * it: `await using` (SIGKILL, then wait), or `kill()` and `wait()`.
 */
export class Proc implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly pid: number;
  readonly status: Promise<Deno.CommandStatus>;
  #log = "";
  #waiters: LogWaiter[] = [];
  #isDone = false;
  readonly #done: Promise<void>;

  constructor(child: Deno.ChildProcess) {
    this.child = child;
    this.pid = child.pid;
    this.status = child.status;
    const pumps = [this.#pump(child.stderr), this.#pump(child.stdout)];
    this.#done = Promise.all([child.status, ...pumps]).then(() => {
      this.#isDone = true;
      for (const w of this.#waiters.splice(0)) w.reject(this.#exitedBefore(w.re));
    });
  }

  /** Everything the process wrote so far (stderr and stdout, as they came). */
  get log(): string {
    return this.#log;
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      this.#log += chunk;
      if (Deno.env.get("APPRUN_TEST_VERBOSE")) Deno.stderr.writeSync(enc.encode(chunk));
      for (const w of [...this.#waiters]) {
        const m = this.#log.match(w.re);
        if (m) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    }
  }

  #exitedBefore(re: RegExp): Error {
    return new Error(`process ${this.pid} exited before ${re} appeared; output:\n${this.#log}`);
  }

  /**
   * The first match of `re` in the output, past or future. Throws, with the output, when the
   * process exits (and its output is read to the end) without it, or after `timeoutMs`.
   */
  waitFor(re: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
    const m = this.#log.match(re);
    if (m) return Promise.resolve(m);
    if (this.#isDone) return Promise.reject(this.#exitedBefore(re));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(
          new Error(`timed out after ${timeoutMs} ms waiting for ${re}; output:\n${this.#log}`),
        );
      }, timeoutMs);
      const waiter: LogWaiter = {
        re,
        resolve: (m) => (clearTimeout(timer), resolve(m)),
        reject: (err) => (clearTimeout(timer), reject(err)),
      };
      this.#waiters.push(waiter);
    });
  }

  /** Sends `signal`; a process already gone is not an error. */
  kill(signal: Deno.Signal = "SIGTERM"): void {
    try {
      this.child.kill(signal);
    } catch {
      // Already gone.
    }
  }

  /** Waits for exit (SIGKILL after `timeoutMs`) and for the output to be read to the end. */
  async wait(timeoutMs = 20_000): Promise<Deno.CommandStatus> {
    if (await withDeadline(this.#done, timeoutMs) === "timeout") this.kill("SIGKILL");
    await this.#done;
    return await this.status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.kill("SIGKILL");
    await this.wait();
  }
}

/** Options for {@linkcode spawn} and {@linkcode run}. */
export interface SpawnOptions {
  /** Added to this process's environment (or the whole of it, with `clearEnv`). */
  env?: Record<string, string>;
  /** Default: the repo root. */
  cwd?: string;
  clearEnv?: boolean;
}

/** `cmd args…` with stdin closed and stdout and stderr piped. */
function command(cmd: string, args: readonly string[], opts: SpawnOptions): Deno.Command {
  const { env, cwd = ROOT, clearEnv } = opts;
  return new Deno.Command(cmd, {
    ...{ args: [...args], env, cwd, clearEnv },
    ...{ stdin: "null", stdout: "piped", stderr: "piped" },
  });
}

/** Starts `cmd args…` with stdin closed and its output collected. The caller ends it. */
export function spawn(cmd: string, args: string[], opts: SpawnOptions = {}): Proc {
  return new Proc(command(cmd, args, opts).spawn());
}

/** What a finished command left behind, and how long it took. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `cmd args…` to completion. Never throws on a non-zero exit. */
export async function run(
  cmd: string,
  args: readonly string[],
  opts: SpawnOptions = {},
): Promise<CommandResult> {
  const t0 = performance.now();
  const out = await command(cmd, args, opts).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    ms: performance.now() - t0,
  };
}

/** A running `apprun serve` with the port it listens on. Disposing it SIGKILLs it. */
export interface Served extends AsyncDisposable {
  proc: Proc;
  port: number;
}

/** Starts `apprun serve FIXTURE --no-supervisor --port 0 ARGS…` and waits until it listens. */
export async function serveFixture(
  fixture: string,
  args: string[] = [],
  opts: SpawnOptions = {},
): Promise<Served> {
  const env = { APPRUN_LOG: "debug", ...opts.env };
  const proc = spawn(APPRUN, [
    ...["serve", `${FIXTURES}/${fixture}`, "--no-supervisor"],
    ...["--port", "0", "--host", "127.0.0.1", ...args],
  ], { ...opts, env });
  try {
    const m = await proc.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
    return { proc, port: Number(m[1]), [Symbol.asyncDispose]: () => proc[Symbol.asyncDispose]() };
  } catch (err) {
    await proc[Symbol.asyncDispose]();
    throw err;
  }
}

/** Whether `pid` runs (a zombie does not: it only waits to be reaped). */
export function isAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Whether anything (a file, a dir, a dangling link) is at `path`. */
export function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Whether `name` is an executable file in a directory of $PATH. */
export function which(name: string): boolean {
  const dirs = (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":");
  return dirs.some((dir) => {
    try {
      return ((Deno.statSync(`${dir}/${name}`).mode ?? 0) & 0o111) !== 0;
    } catch {
      return false;
    }
  });
}

/** A new temp dir, removed (recursively) at the end of the scope: `await using dir = …`. */
export async function tempDir(
  opts: Deno.MakeTempOptions = {},
): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "apprun-test-", ...opts });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}
