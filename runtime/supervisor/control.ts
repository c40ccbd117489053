/**
 * @module
 * The control socket: newline-delimited JSON over a unix stream socket (mode 0600), one reply
 * line per request line, for `apprun status` and `apprun upgrade`. The socket file is bound in
 * a private directory, set to 0600 and renamed into place, so it is never reachable with wider
 * permissions. Also the client, {@linkcode supervisorRequest}. The server owns its listener,
 * the socket file and its connections; it decides nothing: requests go to a {@linkcode
 * ControlHandler}.
 */
import { SupervisorError } from "./errors.ts";
import { checkPrivateDir } from "./control_dir.ts";
import { checkCommand, type RestartHow, type WorkerCommand } from "./options.ts";
import type { WorkerState } from "./worker_state.ts";

/** A request, as sent on the wire. */
export type ControlRequest =
  | { cmd: "status" }
  | {
    cmd: "restart";
    worker?: { path: string; args?: string[]; env?: Record<string, string> };
    /** Ask `beforeRestart` first (`apprun reload`); default false, as `systemctl restart`. */
    check?: boolean;
  }
  | {
    cmd: "reload";
    /** The worker command to reload into (an upgrade's); default: the one in force. */
    worker?: { path: string; args?: string[]; env?: Record<string, string> };
    /** A shorter limit than the start timeout for this reload (an upgrade's), ms. */
    timeoutMs?: number;
  }
  | { cmd: "stop" };

/** `{"cmd":"status"}` → this. */
export interface StatusReply {
  ok: true;
  generation: number;
  pid: number | null;
  state: WorkerState;
  /** The last STATUS= of the current worker ("" when none). */
  status: string;
  storedFds: { name: string; count: number }[];
  lastHandoffMs: number | null;
  restarts: number;
}

/** `{"cmd":"restart"}` → this, once the new worker sent READY=1. */
export interface RestartReply {
  ok: true;
  pid: number;
  generation: number;
  handoffMs: number | null;
}

/** Any failed request. */
export interface ErrorReply {
  ok: false;
  error: string;
  /** A restart whose worker failed to start: that worker's last `STATUS=`. */
  status?: string;
}

/** Every reply. */
export type ControlReply = StatusReply | RestartReply | { ok: true } | ErrorReply;

/** What the server asks of the supervisor. */
export interface ControlHandler {
  status(): StatusReply;
  /** Resolves when the new worker is ready; rejects when it failed. */
  restart(command?: WorkerCommand, reason?: string, how?: RestartHow): Promise<RestartReply>;
  /** Resolves when the reload is done (with the main process then); rejects when it failed. */
  reload(command?: WorkerCommand, reason?: string, timeoutMs?: number): Promise<RestartReply>;
  /** Resolves once the worker is gone and the store flushed. */
  stopWorker(): Promise<void>;
  /** The worker command now in force (restart requests fill in what they leave out). */
  readonly command: WorkerCommand;
}

const MAX_LINE = 64 * 1024;
const enc = new TextEncoder();

/** The listening side. */
export class ControlServer {
  readonly path: string;
  readonly #listener: Deno.Listener;
  readonly #handler: ControlHandler;
  readonly #ino: number | null;
  readonly #conns = new Set<Deno.Conn>();
  readonly #tasks = new Set<Promise<void>>();
  /** Connections between a request and its reply: closed only after the reply. */
  readonly #busy = new Set<Deno.Conn>();
  #isClosing = false;
  #acceptLoop: Promise<void> = Promise.resolve();

  private constructor(path: string, listener: Deno.Listener, handler: ControlHandler) {
    this.path = path;
    this.#listener = listener;
    this.#handler = handler;
    this.#ino = Deno.statSync(path).ino;
  }

  /** Listens on `path`. Refuses when another process is already listening there. */
  static async open(path: string, handler: ControlHandler): Promise<ControlServer> {
    await removeStale(path);
    const parent = path.slice(0, path.lastIndexOf("/")) || "/";
    const dir = Deno.makeTempDirSync({ dir: parent, prefix: ".apprun-control-" });
    let listener: Deno.Listener | null = null;
    try {
      Deno.chmodSync(dir, 0o700);
      listener = Deno.listen({ transport: "unix", path: `${dir}/control` });
      Deno.chmodSync(`${dir}/control`, 0o600);
      Deno.renameSync(`${dir}/control`, path);
      const server = new ControlServer(path, listener, handler);
      server.#acceptLoop = server.#accept();
      return server;
    } catch (err) {
      listener?.close();
      throw new SupervisorError(`cannot listen on the control socket ${path}`, { cause: err });
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  }

  /** Stops listening, closes every connection after its reply, removes the socket file. */
  async close(): Promise<void> {
    this.#isClosing = true;
    this.#listener.close();
    await this.#acceptLoop;
    for (const c of this.#conns) if (!this.#busy.has(c)) tryClose(c);
    await Promise.allSettled([...this.#tasks]);
    try {
      if (Deno.statSync(this.path).ino === this.#ino) Deno.removeSync(this.path);
    } catch {
      // Removed or replaced by someone else: not ours to remove any more.
    }
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch {
        break;
      }
      this.#conns.add(conn);
      const task = this.#serve(conn).finally(() => {
        this.#conns.delete(conn);
        this.#tasks.delete(task);
      });
      this.#tasks.add(task);
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    const lines = readLines(conn);
    try {
      for await (const line of lines) {
        this.#busy.add(conn);
        const reply = await this.#answer(line);
        await writeAll(conn, enc.encode(JSON.stringify(reply) + "\n"));
        this.#busy.delete(conn);
        if (this.#isClosing || (!reply.ok && reply.error.startsWith("bad request"))) break;
      }
    } catch {
      // The client went away (or we are closing): nothing to answer.
    } finally {
      this.#busy.delete(conn);
      tryClose(conn);
    }
  }

  #commandOf(w: { path: string; args?: string[]; env?: Record<string, string> } | undefined) {
    return commandOfRequest(w, this.#handler.command);
  }

  async #answer(line: string): Promise<ControlReply> {
    let req: ControlRequest;
    try {
      req = JSON.parse(line);
    } catch {
      return { ok: false, error: "bad request: not JSON" };
    }
    try {
      switch (req?.cmd) {
        case "status":
          return this.#handler.status();
        case "restart": {
          const command = this.#commandOf(req.worker);
          // As `systemctl restart`: a worker still starting is stopped (an upgrade's rollback
          // cannot wait for one that never gets ready); the check only when asked for.
          const how = { isChecked: req.check === true, isPreempting: true };
          return await this.#handler.restart(command, "control request", how);
        }
        case "reload": {
          const t = req.timeoutMs;
          const timeoutMs = typeof t === "number" && Number.isSafeInteger(t) && t > 0
            ? t
            : undefined;
          return await this.#handler.reload(
            this.#commandOf(req.worker),
            "control request",
            timeoutMs,
          );
        }
        case "stop":
          await this.#handler.stopWorker();
          return { ok: true };
        default: {
          const cmd = (req as { cmd?: unknown } | null)?.cmd;
          return { ok: false, error: `unknown command: ${JSON.stringify(cmd)}` };
        }
      }
    } catch (err) {
      const status = err instanceof SupervisorError ? err.statusText : undefined;
      return status === undefined
        ? { ok: false, error: (err as Error).message }
        : { ok: false, error: (err as Error).message, status };
    }
  }
}

/** A request's worker command (env defaulting to the one in force), or undefined. */
function commandOfRequest(
  w: { path: string; args?: string[]; env?: Record<string, string> } | undefined,
  current: WorkerCommand,
): WorkerCommand | undefined {
  if (w === undefined) return undefined;
  return checkCommand({ path: w.path, args: w.args ?? [], env: w.env ?? current.env });
}

/** A socket file at `path` nobody listens on is removed; a live one is an error. */
async function removeStale(path: string): Promise<void> {
  try {
    if (!Deno.lstatSync(path).isSocket) {
      throw new SupervisorError(`the control socket path ${path} exists and is not a socket`);
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  try {
    const conn = await Deno.connect({ transport: "unix", path });
    conn.close();
  } catch {
    Deno.removeSync(path);
    return;
  }
  throw new SupervisorError(`another supervisor is listening on ${path}`);
}

async function* readLines(conn: Deno.Conn): AsyncGenerator<string> {
  const dec = new TextDecoder();
  const buf = new Uint8Array(16 * 1024);
  let pending = "";
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) return;
    pending += dec.decode(buf.subarray(0, n), { stream: true });
    let nl;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (line) yield line;
    }
    if (pending.length > MAX_LINE) throw new SupervisorError("control request line too long");
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

function tryClose(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

/** Rethrows `err` unless it says the path does not exist (then connect() says so itself). */
function whenFound(err: unknown): void {
  if (!(err instanceof Deno.errors.NotFound)) throw err;
}

/**
 * Sends one request to the supervisor listening on `path` and returns its reply. A restart
 * request answers only once the new worker is ready, so give it a timeout longer than the
 * worker's start. Throws {@linkcode SupervisorError} when nobody listens, on timeout, or on a
 * malformed reply; an `{ok:false}` reply is returned, not thrown.
 */
export async function supervisorRequest(
  path: string,
  request: ControlRequest,
  timeoutMs = 120_000,
): Promise<ControlReply> {
  // A socket in a directory someone else controls may be theirs: ask it nothing.
  const dir = path.lastIndexOf("/") > 0 ? path.slice(0, path.lastIndexOf("/")) : null;
  if (dir !== null) await checkPrivateDir(dir).catch(whenFound);
  let conn: Deno.Conn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch (err) {
    throw new SupervisorError(`no supervisor is listening on ${path}`, { cause: err });
  }
  let isTimedOut = false;
  const timer = setTimeout(() => {
    isTimedOut = true;
    tryClose(conn);
  }, timeoutMs);
  try {
    await writeAll(conn, enc.encode(JSON.stringify(request) + "\n"));
    for await (const line of readLines(conn)) return JSON.parse(line) as ControlReply;
    throw new SupervisorError(`the supervisor on ${path} closed the connection without a reply`);
  } catch (err) {
    if (isTimedOut) {
      throw new SupervisorError(`no reply from the supervisor on ${path} in ${timeoutMs} ms`);
    }
    if (err instanceof SupervisorError) throw err;
    throw new SupervisorError(`control request to ${path} failed`, { cause: err });
  } finally {
    clearTimeout(timer);
    tryClose(conn);
  }
}
