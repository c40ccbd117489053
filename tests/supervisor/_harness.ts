/**
 * Test harness for the embedded supervisor: the protocol-level python worker
 * (fixtures/worker.py), a logger that keeps lines, a JSON-lines TCP client, an fd snapshot,
 * and `withSupervisor()`, which opens a real listener on port 0, runs a real Supervisor in this
 * process and always stops it and closes the listener. Nothing here mocks a socket or process.
 */
import assert from "node:assert/strict";
import { type Listener, openListeners } from "../../runtime/listen.ts";
import type { Logger, LogLevel } from "../../runtime/log.ts";
import {
  Supervisor,
  type SupervisorOptions,
  type WorkerCommand,
} from "../../runtime/supervisor/mod.ts";
import { closeFd } from "../../runtime/sys/mod.ts";

const HERE = new URL(".", import.meta.url).pathname;
export const WORKER_PY = `${HERE}fixtures/worker.py`;
export const DENO_WORKER = `${HERE}fixtures/deno_worker.ts`;
export const DENO = new URL("../../node_modules/.bin/deno", import.meta.url).pathname;

/** The real python binary (not a pyenv shim: the worker's start time is what we measure). */
export const PYTHON = new TextDecoder().decode(
  new Deno.Command("python3", { args: ["-c", "import sys; print(sys.executable)"] }).outputSync()
    .stdout,
).trim();

/** The python worker with `env` (TW_* knobs). */
export function pyWorker(env: Record<string, string> = {}): WorkerCommand {
  return { path: PYTHON, args: [WORKER_PY], env: { PATH: Deno.env.get("PATH") ?? "", ...env } };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A Logger that keeps every line (and echoes them with APPRUN_TEST_VERBOSE=1). */
export class MemoryLog implements Logger {
  readonly level: LogLevel = "debug";
  readonly lines: string[] = [];
  readonly #echo = Deno.env.get("APPRUN_TEST_VERBOSE") !== undefined;

  #write(level: string, msg: string): void {
    const line = `${level} ${msg}`;
    this.lines.push(line);
    if (this.#echo) console.error(`  [${performance.now().toFixed(0)}] ${line}`);
  }
  error = (m: string) => this.#write("error", m);
  warn = (m: string) => this.#write("warn", m);
  info = (m: string) => this.#write("info", m);
  debug = (m: string) => this.#write("debug", m);

  get text(): string {
    return this.lines.join("\n");
  }

  /** Lines matching `re`. */
  grep(re: RegExp): string[] {
    return this.lines.filter((l) => re.test(l));
  }

  /** Waits until a line matches `re`; returns the match. */
  async waitFor(re: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const l of this.lines) {
        const m = l.match(re);
        if (m) return m;
      }
      if (Date.now() > deadline) throw new Error(`no log line matched ${re}:\n${this.text}`);
      await sleep(10);
    }
  }
}

/** Polls `pred` until it holds. */
export async function waitUntil(pred: () => boolean, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A line-oriented JSON client over TCP: one request line, one reply line. */
export class LineClient {
  readonly conn: Deno.TcpConn;
  #buf = "";
  #isEof = false;
  #reading: Promise<void> | null = null;
  readonly #dec = new TextDecoder();

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  static async connect(port: number): Promise<LineClient> {
    return new LineClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  get isEof(): boolean {
    return this.#isEof;
  }

  /** One read in flight at most; its errors (reset, closed) count as end of stream. */
  #readOnce(): Promise<void> {
    this.#reading ??= (async () => {
      const chunk = new Uint8Array(65536);
      try {
        const n = await this.conn.read(chunk);
        if (n === null) this.#isEof = true;
        else this.#buf += this.#dec.decode(chunk.subarray(0, n));
      } catch {
        this.#isEof = true;
      } finally {
        this.#reading = null;
      }
    })();
    return this.#reading;
  }

  /** Reads until `pred` holds, EOF, or the deadline; true when `pred` holds. */
  async #readUntil(pred: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!pred() && !this.#isEof) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#readOnce(),
        new Promise<void>((r) => timer = setTimeout(r, left)),
      ]);
      clearTimeout(timer);
    }
    return pred();
  }

  /** Sends `req` and returns the parsed reply line. */
  // deno-lint-ignore no-explicit-any
  async request(req: Record<string, unknown>, timeoutMs = 5000): Promise<Record<string, any>> {
    await this.send(req);
    const ok = await this.#readUntil(() => this.#buf.includes("\n"), timeoutMs);
    if (!ok) throw new Error(`no reply to ${JSON.stringify(req)} (eof: ${this.#isEof})`);
    const nl = this.#buf.indexOf("\n");
    const line = this.#buf.slice(0, nl);
    this.#buf = this.#buf.slice(nl + 1);
    return JSON.parse(line);
  }

  /** Sends `req` without waiting for a reply. */
  async send(req: Record<string, unknown>): Promise<void> {
    const bytes = new TextEncoder().encode(JSON.stringify(req) + "\n");
    for (let off = 0; off < bytes.length;) off += await this.conn.write(bytes.subarray(off));
  }

  /** Whether the peer ends the stream within `timeoutMs`. */
  async waitEof(timeoutMs: number): Promise<boolean> {
    await this.#readUntil(() => false, timeoutMs);
    return this.#isEof;
  }

  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
    await this.#reading;
  }
}

/** This process's open fds with what they point at (from /proc/self/fd). */
export function fdSnapshot(): Map<number, string> {
  const out = new Map<number, string>();
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      out.set(Number(e.name), Deno.readLinkSync(`/proc/self/fd/${e.name}`));
    } catch {
      // The fd of the directory listing itself, gone by now.
    }
  }
  return out;
}

/** Fds open now that were not in `before` (sockets, pipes, pidfds: ours to have closed). */
export function newFds(before: Map<number, string>): string[] {
  const now = fdSnapshot();
  return [...now].filter(([fd, target]) => before.get(fd) !== target)
    .filter(([, t]) => /^(socket|pipe|anon_inode)/.test(t)).map(([fd, t]) => `${fd} -> ${t}`);
}

/** What a test gets from {@linkcode withSupervisor}. */
export interface Harness {
  sup: Supervisor;
  log: MemoryLog;
  port: number;
  listener: Listener;
}

/**
 * Runs `fn` against a real Supervisor with one TCP listener ("http" on 127.0.0.1:0) before
 * `opts.listeners`. Always
 * stops the supervisor, closes the listener and checks that no fd is left behind.
 */
export async function withSupervisor(
  opts: Partial<SupervisorOptions>,
  fn: (h: Harness) => Promise<void>,
): Promise<void> {
  const before = fdSnapshot();
  const log = new MemoryLog();
  const [listener] = openListeners({ port: 0, host: "127.0.0.1" });
  const port = listener.addr.transport === "tcp" ? listener.addr.port : 0;
  const sup = new Supervisor({
    worker: pyWorker(),
    restartDelayMs: 20,
    ...opts,
    listeners: [listener, ...(opts.listeners ?? [])],
    log,
  });
  try {
    await fn({ sup, log, port, listener });
  } catch (err) {
    if (Deno.env.get("APPRUN_TEST_VERBOSE") === undefined) console.error(log.text);
    throw err;
  } finally {
    await sup.stop();
    closeFd(listener.fd);
  }
  assert.deepEqual(newFds(before), [], "fds left open after the supervisor stopped");
}
