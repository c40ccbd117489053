/**
 * Test harness for the embedded supervisor: the protocol-level python worker
 * (fixtures/worker.py), a logger that keeps lines, a JSON-lines client on a raw TCP
 * connection, an fd snapshot, and `withSupervisor()`, which opens a real listener on port 0,
 * runs a real Supervisor in this process and always stops it and closes the listener. Nothing
 * here mocks a socket or process.
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
import { RawClient } from "../_net.ts";
import { waitUntil } from "../_poll.ts";

const HERE = new URL(".", import.meta.url).pathname;
export const WORKER_PY = `${HERE}fixtures/worker.py`;
export const DENO_WORKER = `${HERE}fixtures/deno_worker.ts`;

/** The real python binary (not a pyenv shim: the worker's start time is what we measure). */
export const PYTHON = new TextDecoder().decode(
  new Deno.Command("python3", { args: ["-c", "import sys; print(sys.executable)"] }).outputSync()
    .stdout,
).trim();

/** The python worker with `env` (TW_* knobs). */
export function pyWorker(env: Record<string, string> = {}): WorkerCommand {
  return { path: PYTHON, args: [WORKER_PY], env: { PATH: Deno.env.get("PATH") ?? "", ...env } };
}

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
  waitFor(re: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    return waitUntil(
      () => this.lines.map((l) => l.match(re)).find((m) => m !== null),
      () => `a log line matching ${re}:\n${this.text}`,
      { timeoutMs },
    );
  }
}

/**
 * A line-oriented JSON client over TCP: one request line, one reply line. The caller closes
 * it (`close()`).
 */
export class LineClient {
  readonly raw: RawClient;

  private constructor(raw: RawClient) {
    this.raw = raw;
  }

  static async connect(port: number): Promise<LineClient> {
    return new LineClient(await RawClient.connect(port));
  }

  /** Sends `req` and returns the parsed reply line. */
  // deno-lint-ignore no-explicit-any
  async request(req: Record<string, unknown>, timeoutMs = 5000): Promise<Record<string, any>> {
    await this.send(req);
    const line = await this.raw.readLine(timeoutMs);
    if (!line.endsWith("\n")) {
      throw new Error(`no reply to ${JSON.stringify(req)} (eof: ${this.raw.isEof})`);
    }
    return JSON.parse(line);
  }

  /** Sends `req` without waiting for a reply. */
  send(req: Record<string, unknown>): Promise<void> {
    return this.raw.write(JSON.stringify(req) + "\n");
  }

  /** Whether the peer ends the stream within `timeoutMs`. */
  waitEof(timeoutMs: number): Promise<boolean> {
    return this.raw.waitForClose(timeoutMs);
  }

  close(): void {
    this.raw.close();
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
