/**
 * @module
 * The server: ties listeners, the epoll loop, HTTP connections and the service manager
 * together. Serves one or more bindings (a handler and the listeners it answers on: one per
 * `Deno.serve` call, or the module's default export). Accepts, tracks every connection, runs
 * the timeout sweep, reports READY=1 /
 * STATUS= / WATCHDOG=1, and stops gracefully: stop accepting, let requests in flight finish
 * within the drain timeout (`EXTEND_TIMEOUT_USEC=` while waiting), close idle connections
 * politely, answer 503 to what is left — or hands off: the same, but connections and sessions
 * (WebSocket, SSE) are taken out for the next process instead of closed. It owns the
 * connections, the sessions and the loop; listeners belong to whoever passed them in (it stops
 * accepting on them but does not close them).
 */
import { Acceptor, EventLoop, ParkedFds, SPIN_LONG, SPIN_NONE, SPIN_SHORT } from "./io/mod.ts";
import {
  type ConnectionContext,
  DEFAULT_LIMITS,
  type FetchHandler,
  HttpConnection,
  type HttpLimits,
} from "./http/mod.ts";
import { formatAddr, type Listener } from "./listen.ts";
import type { Logger } from "./log.ts";
import type { Notifier } from "./notify.ts";
import { describeError } from "./errors.ts";
import { DEFAULTS } from "./defaults.ts";
import {
  type CarriedSession,
  claimSession,
  type DetachedSession,
  type SessionEnv,
} from "./sessions/mod.ts";
import type { SessionHooks } from "./hooks.ts";
import {
  type ConnectionRecord,
  type IdleTable,
  IdleTableBuilder,
  IdleTableReader,
  isSameAddress,
} from "./handoff/mod.ts";
import { rawPeerAddr } from "./sys/mod.ts";
import { resumeWebSocket } from "./ws/mod.ts";
import { eventStreamStarter, resumeSse } from "./sse/mod.ts";

/** A handler and the listeners it answers on. */
export interface ServeBinding {
  handler: FetchHandler;
  listeners: Listener[];
}

/** Options for {@linkcode Server}. */
export interface ServerOptions {
  bindings: ServeBinding[];
  log: Logger;
  notifier: Notifier | null;
  limits?: Partial<HttpLimits>;
  /** How long requests in flight may run after SIGTERM. */
  drainTimeoutMs?: number;
  /** The app's session hooks (from the handler module). */
  hooks?: SessionHooks;
  /** This process's handoff generation. */
  generation?: number;
}

/** The server's life: starting → serving → draining (stop) or handing-off (restart) → stopped. */
export type ServerState = "starting" | "serving" | "draining" | "handing-off" | "stopped";

/** A connection taken out of the server for the next process. The caller owns `fd`. */
export interface DetachedConnection {
  fd: number;
  /** Bytes read but not consumed (a partial head, pipelined requests). */
  buffered: Uint8Array;
  listenerName: string;
  /** The peer's raw sockaddr, as captured when the connection came (null: unknown). */
  peer: Uint8Array | null;
}

/** Everything a handoff takes out of the server. The caller owns every fd. */
export interface HandoffHarvest {
  /** Idle connections with bytes read but not consumed (a partial head, pipelined requests). */
  http: DetachedConnection[];
  /** Idle connections with nothing read, in bulk (handoff/idle_table.ts): fds in table order. */
  idle: { fds: number[]; table: IdleTable };
  sessions: DetachedSession[];
}

const READ_BUF_SIZE = 64 * 1024;
const SWEEP_MS = 250;
const STATUS_MS = 2000;

/** An HTTP server on owned sockets. */
export class Server {
  readonly loop: EventLoop;
  readonly log: Logger;
  readonly notifier: Notifier | null;
  readonly limits: HttpLimits;
  readonly drainTimeoutMs: number;
  readonly connections = new Set<HttpConnection>();
  readonly sessions = new Set<CarriedSession>();
  readonly hooks: SessionHooks;
  #state: ServerState = "starting";
  #bindings: ServeBinding[] = [];
  /** Each listener's handler, by listener name (carried connections name theirs). */
  #handlers = new Map<string, FetchHandler>();
  #acceptors = new Map<ServeBinding, Acceptor[]>();
  #ctx: ConnectionContext;
  #now = performance.now();
  #isClosingAll = false;
  /** Stop the sweep and status timers (on the loop: see EventLoop.every). */
  #timers: (() => void)[] = [];
  #lastStatus = "";
  #accepted = 0;
  #served = 0;
  #onDrained: (() => void) | null = null;
  #detached: DetachedConnection[] = [];
  #idleOut = new IdleTableBuilder();
  /** Carried idle connections not yet readable (lazy resume), and their table. */
  readonly #parked: ParkedFds;
  #parkedTable: IdleTableReader | null = null;
  /** When parked connections reach the idle timeout (performance.now()), or 0. */
  #parkedDeadline = 0;
  #sessionHandoffs: Promise<DetachedSession | null>[] = [];
  #sessionEnv: SessionEnv<SessionHooks>;
  #loopDone: Promise<void> | null = null;
  /** Exchanges waiting outside their turn (an async handler, a streamed body). */
  #pendingExchanges = 0;
  #closed: Promise<void> | null = null;

  constructor(opts: ServerOptions) {
    this.log = opts.log;
    this.notifier = opts.notifier;
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.drainTimeoutMs = opts.drainTimeoutMs ?? DEFAULTS.drainTimeoutMs;
    this.loop = EventLoop.create();
    this.loop.onError = (err) => this.log.error(`event handler failed: ${describeError(err)}`);
    // A busy loop out of events waits in epoll for the next one (fewer thread hops) unless
    // something may wait in Deno's own loop: an exchange's async work, a session's app code.
    this.loop.spinFor = () =>
      this.#pendingExchanges > 0 ? SPIN_NONE : this.sessions.size > 0 ? SPIN_SHORT : SPIN_LONG;
    const readBuf = new Uint8Array(READ_BUF_SIZE);
    const isClosingAll = () => this.#isClosingAll;
    const isHandingOff = () => this.#state === "handing-off";
    this.#ctx = {
      loop: this.loop,
      limits: this.limits,
      log: this.log,
      readBuf,
      readLen: BigInt(READ_BUF_SIZE),
      now: () => this.#now,
      get isClosingAll() {
        return isClosingAll();
      },
      get isHandingOff() {
        return isHandingOff();
      },
      onClosed: (conn) => this.#onClosed(conn),
      onIdle: (conn) => this.#onIdle(conn),
      notePending: (delta) => this.#pendingExchanges += delta,
      takeoverOf: (res, conn, eventStream) => {
        const starter = claimSession(res) ??
          (eventStream !== undefined && res.body !== null
            ? eventStreamStarter(res, eventStream)
            : undefined);
        if (starter === undefined) return undefined;
        const env = sessionEnv();
        return {
          head: (request) => starter.head(request),
          attach: (socket, leftover, framing) =>
            starter.attach(socket, leftover, framing, env, conn.listenerName),
          abandon: () => starter.abandon(),
        };
      },
      onUpgraded: (conn) => {
        this.#served += conn.requests;
        this.connections.delete(conn);
      },
    };
    this.hooks = opts.hooks ?? {};
    const sessionEnv = () => this.#sessionEnv;
    this.#sessionEnv = {
      loop: this.loop,
      readBuf,
      readLen: BigInt(READ_BUF_SIZE),
      log: this.log,
      hooks: this.hooks,
      generation: opts.generation ?? 0,
      // A client that stops reading a session is cut off as one that stops reading a response.
      writeStallMs: this.limits.bodyTimeoutMs,
      track: (session) => this.sessions.add(session),
      untrack: (session) => {
        this.sessions.delete(session);
        if (this.#isEmpty()) this.#onDrained?.();
      },
      adoptHttp: (fd, buffered, listener) =>
        void this.adopt(fd, { listenerName: listener ?? "resumed", buffered }),
      handlerFor: (listener) => this.#handlerFor(listener),
    };
    for (const b of opts.bindings) this.#bind(b);
    this.#parked = new ParkedFds(this.loop, (fd, i) => this.#wake(fd, i));
  }

  get state(): ServerState {
    return this.#state;
  }

  /** Every listener of every binding. */
  get listeners(): Listener[] {
    return this.#bindings.flatMap((b) => b.listeners);
  }

  /** Starts accepting on every listener and runs the loop. */
  start(): void {
    if (this.#state !== "starting") return;
    this.startLoop();
    for (const b of this.#bindings) this.#startAccepting(b);
    this.#timers.push(this.loop.every(STATUS_MS, () => this.#reportStatus()));
    this.#state = "serving";
  }

  /**
   * Runs the loop (and the timeout sweep) without accepting yet: a next process gets it going
   * before it asks to take over, so that the takeover's pause does not pay for it.
   */
  startLoop(): void {
    if (this.#loopDone !== null) return;
    this.#loopDone = this.loop.run().catch((err) => {
      this.log.error(`event loop failed: ${describeError(err)}`);
      throw err;
    });
    this.#timers.push(this.loop.every(SWEEP_MS, () => this.#sweep()));
  }

  /** Resolves once the server has stopped and its loop's epoll fd is closed. */
  get closed(): Promise<void> {
    return this.#closed ?? Promise.resolve();
  }

  /**
   * Serves one more binding (a `Deno.serve` call made after start-up). Its listener names must
   * be new to this server.
   */
  addBinding(binding: ServeBinding): void {
    this.#bind(binding);
    if (this.#state === "serving") this.#startAccepting(binding);
  }

  /**
   * Stops one binding, as `Deno.serve`'s `shutdown()`: stops accepting on its listeners, closes
   * its idle connections and waits (up to the drain timeout) for the rest. Listeners stay open.
   */
  async stopBinding(binding: ServeBinding): Promise<void> {
    for (const a of this.#acceptors.get(binding) ?? []) a.stop();
    this.#acceptors.delete(binding);
    const names = new Set(binding.listeners.map((l) => l.name));
    const mine = () => [...this.connections].filter((c) => names.has(c.listenerName));
    for (const c of mine()) c.closeIdle();
    const deadline = performance.now() + this.drainTimeoutMs;
    while (mine().length > 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      for (const c of mine()) c.closeIdle();
    }
  }

  #bind(binding: ServeBinding): void {
    this.#bindings.push(binding);
    for (const l of binding.listeners) this.#handlers.set(l.name, binding.handler);
  }

  #startAccepting(binding: ServeBinding): void {
    const acceptors = binding.listeners.map((l) =>
      new Acceptor({
        loop: this.loop,
        fd: l.fd,
        isTcp: l.addr.transport === "tcp",
        log: this.log,
        onConnection: (fd, peer) => this.adopt(fd, { listenerName: l.name, peer }),
      })
    );
    for (const a of acceptors) a.start();
    this.#acceptors.set(binding, acceptors);
    for (const l of binding.listeners) {
      this.log.info(`listening on ${formatAddr(l.addr)} (${l.name})`);
    }
  }

  /** The handler for connections from the listener called `name` (else the first binding's). */
  #handlerFor(name: string | null): FetchHandler {
    return (name !== null ? this.#handlers.get(name) : undefined) ?? this.#bindings[0].handler;
  }

  /** Takes ownership of a connected fd and serves it. */
  adopt(
    fd: number,
    opts: { listenerName: string; buffered?: Uint8Array; peer?: Uint8Array },
  ): HttpConnection {
    this.#accepted++;
    const conn = new HttpConnection(this.#ctx, fd, {
      listenerName: opts.listenerName,
      defaultHost: "localhost",
      handler: this.#handlerFor(opts.listenerName),
      buffered: opts.buffered,
      peer: opts.peer,
    });
    if (conn.state === "closed") return conn;
    this.connections.add(conn);
    if (this.#state === "handing-off" && conn.isIdle) this.#detach(conn);
    return conn;
  }

  /** Resumes a connection or session carried from the previous process; takes `fd`. */
  resume(fd: number, record: ConnectionRecord): void {
    switch (record.kind) {
      case "http":
        this.adopt(fd, {
          listenerName: record.listener ?? "resumed",
          buffered: record.buffered,
          peer: record.peer ?? undefined,
        });
        break;
      case "ws":
        resumeWebSocket(fd, record, this.#sessionEnv);
        break;
      case "sse":
        resumeSse(fd, record, this.#sessionEnv);
        break;
    }
  }

  /**
   * Resumes idle connections carried in bulk (docs/design.md, "Lazy resume"): each fd is parked
   * in the loop at once — served as soon as its client speaks — and becomes a connection, its
   * table entry read and its peer cross-checked, only when first readable. Takes every fd.
   */
  resumeIdle(fds: readonly number[], table: IdleTable): void {
    if (fds.length === 0) return;
    if (this.#parkedTable !== null) throw new Error("idle connections were resumed already");
    this.#parkedTable = new IdleTableReader(table);
    this.#parkedDeadline = performance.now() + this.limits.idleTimeoutMs;
    this.#parked.parkAll(fds);
  }

  /** A parked connection is readable: check its peer, then serve it (it reads on next turn). */
  #wake(fd: number, i: number): void {
    const table = this.#parkedTable!;
    const recorded = table.peer(i);
    const now = rawPeerAddr(fd);
    if (!isSameAddress(now, recorded)) {
      this.log.warn(`fd ${fd}: addresses differ from the handoff record: closing it`);
      this.loop.close(fd);
      return;
    }
    const peer = now ?? recorded?.slice() ?? undefined;
    this.adopt(fd, { listenerName: table.listener(i) ?? "resumed", peer });
  }

  /** Connections and sessions served now (parked ones included). */
  get connectionCount(): number {
    return this.connections.size + this.#parked.size + this.sessions.size;
  }

  /** Sends READY=1 with a status line. */
  notifyReady(extra = ""): void {
    this.#sendStatus(true, extra);
  }

  /** One line describing the server's load. */
  statusLine(): string {
    let busy = 0;
    let requests = this.#served;
    for (const c of this.connections) {
      if (!c.isIdle) busy++;
      requests += c.requests;
    }
    let ws = 0;
    for (const sess of this.sessions) if (sess.kind === "ws") ws++;
    const connections = this.connections.size + this.#parked.size;
    return `${connections} connections (${busy} busy), ${ws} WebSockets, ` +
      `${this.sessions.size - ws} SSE streams, ${requests} requests`;
  }

  /** Stops accepting (listeners stay open). */
  stopAccepting(): void {
    for (const acceptors of this.#acceptors.values()) for (const a of acceptors) a.stop();
  }

  /**
   * Graceful stop without handoff: stop accepting, close idle connections, let the rest finish
   * within the drain timeout, then answer 503 or close what remains.
   */
  async shutdown(): Promise<void> {
    if (this.#state === "stopped" || this.#state === "draining") return;
    this.#state = "draining";
    this.stopAccepting();
    this.#isClosingAll = true;
    this.#parked.closeAll();
    for (const c of [...this.connections]) c.closeIdle();
    for (const session of [...this.sessions]) session.closeForShutdown();
    await this.waitForConnections(this.drainTimeoutMs);
    for (const c of [...this.connections]) c.abandon(503);
    await this.waitForConnections(1000);
    for (const c of [...this.connections]) c.destroy();
    await this.stop();
  }

  /**
   * Waits until every connection is gone (or idle, with `untilIdle`), extending the manager's
   * stop timeout as it goes. Returns false on timeout.
   */
  async waitForConnections(timeoutMs: number, untilIdle = false): Promise<boolean> {
    const isDone = () => untilIdle ? [...this.connections].every((c) => c.isIdle) : this.#isEmpty();
    const deadline = performance.now() + timeoutMs;
    while (!isDone()) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      try {
        this.notifier?.extendTimeout(Math.min(left, 5000) * 1000 + 5_000_000);
      } catch {
        // The manager is gone: keep draining anyway.
      }
      // A loop timer, not setTimeout: Deno's first timer costs 10–40 ms, here in a handoff's pause.
      const nap = this.loop.sleep(Math.min(left, 1000));
      await new Promise<void>((resolve) => {
        this.#onDrained = resolve;
        nap.promise.then(resolve);
      });
      nap.cancel();
      this.#onDrained = null;
    }
    return true;
  }

  /** Stops the loop and timers. Connections must be gone or detached. */
  stop(): Promise<void> {
    if (this.#state === "stopped") return this.closed;
    this.#state = "stopped";
    this.stopAccepting();
    for (const stopTimer of this.#timers) stopTimer();
    this.#timers = [];
    this.loop.stop();
    this.#closed = (this.#loopDone ?? Promise.resolve()).catch(() => {}).then(() => {
      this.loop.dispose();
    });
    return this.#closed;
  }

  #isEmpty(): boolean {
    return this.connections.size === 0 && this.sessions.size === 0;
  }

  #onClosed(conn: HttpConnection): void {
    this.#served += conn.requests;
    this.connections.delete(conn);
    if (this.#isEmpty()) this.#onDrained?.();
  }

  #onIdle(conn: HttpConnection): void {
    if (this.#state === "handing-off") this.#detach(conn);
    else if (this.#state === "draining") this.#onDrained?.();
  }

  /**
   * Handoff, step 1 (docs/design.md, "What gets handed off"): stop accepting, and take every idle connection (and every
   * partly received request) out of the loop at once, before reading another byte. Busy
   * connections go on; each is taken out when its response is done.
   */
  beginHandoff(timeoutMs: number): void {
    if (this.#state !== "serving") throw new Error(`cannot hand off while ${this.#state}`);
    this.#state = "handing-off";
    this.stopAccepting();
    this.#sendStatus(false, "handing off");
    // Still parked: nothing read since the last handoff, so the table entry carries on as is.
    const parked = this.#parked.take();
    for (let k = 0; k < parked.fds.length; k++) {
      this.#idleOut.addFrom(this.#parkedTable!, parked.tags[k], parked.fds[k]);
    }
    // Idle with nothing read: out in bulk, dropped from the books at once (no per-connection
    // bookkeeping: at 10k connections it was most of the take-out).
    const rest: HttpConnection[] = [];
    for (const c of this.connections) {
      const fd = c.handOver();
      if (fd >= 0) {
        this.#served += c.requests;
        this.#idleOut.add(fd, c.listenerName, c.rawPeer);
      } else rest.push(c);
    }
    this.connections.clear();
    for (const c of rest) this.connections.add(c);
    for (const c of rest) {
      if (c.isIdle) this.#detach(c);
      else if (c.state === "closing") c.destroy(); // answered already; only lingering
    }
    const deadline = performance.now() + timeoutMs;
    this.#sessionHandoffs = [...this.sessions].map((session) =>
      session.handOff(deadline).catch((err) => {
        this.log.error(`session not carried: ${describeError(err)}`);
        return null;
      })
    );
  }

  /**
   * Handoff, step 2: waits (up to `timeoutMs`) for the busy connections to finish and be taken
   * out; what is still busy at the deadline gets 503 or is closed (it cannot be carried). Stops
   * the loop and returns the connections to carry, whose fds the caller now owns and closes
   * only once {@linkcode closed} resolved.
   */
  async finishHandoff(timeoutMs: number): Promise<HandoffHarvest> {
    await this.waitForConnections(timeoutMs);
    for (const c of [...this.connections]) {
      this.log.warn(`fd ${c.socket.fd}: request still running after the drain timeout: 503`);
      c.abandon(503);
    }
    await this.waitForConnections(1000);
    for (const c of [...this.connections]) c.destroy();
    const sessions = (await Promise.all(this.#sessionHandoffs)).filter((x) => x !== null);
    // Not awaited: the loop winds down (a thread hop) while the caller writes the bundle. It
    // forgot the fds it gave up (EventLoop.forget): await `closed` before closing them.
    void this.stop();
    const http = this.#detached;
    const idle = { fds: this.#idleOut.fds, table: this.#idleOut.build() };
    this.#detached = [];
    this.#idleOut = new IdleTableBuilder();
    return { http, idle, sessions };
  }

  /** Takes an idle connection out, once its last response has left (the queue dies with detach). */
  #detach(conn: HttpConnection): void {
    if (conn.socket.bufferedAmount > 0) {
      conn.socket.pauseReading();
      conn.socket.drained().then(() => {
        if (conn.state === "idle" || conn.state === "head") this.#detach(conn);
      });
      return;
    }
    const listenerName = conn.listenerName;
    const peer = conn.rawPeer;
    const { fd, buffered } = conn.detach();
    if (buffered.byteLength === 0) this.#idleOut.add(fd, listenerName, peer);
    else this.#detached.push({ fd, buffered, listenerName, peer });
  }

  /** Deadlines: every connection's, and every session's stalled writes (sessions/output.ts). */
  #sweep(): void {
    this.#now = performance.now();
    for (const c of this.connections) c.checkDeadline(this.#now);
    for (const s of this.sessions) s.checkDeadline(this.#now);
    // Parked connections all resumed at once: their idle timeout is one deadline.
    if (this.#parkedDeadline !== 0 && this.#now > this.#parkedDeadline) {
      this.#parkedDeadline = 0;
      this.#parked.closeAll();
    }
  }

  #reportStatus(): void {
    this.#sendStatus(false);
  }

  #sendStatus(isReady: boolean, extra = ""): void {
    const line = (this.#state === "draining" ? "Draining: " : "Serving: ") + this.statusLine() +
      (extra ? `; ${extra}` : "");
    if (!isReady && line === this.#lastStatus) return;
    this.#lastStatus = line;
    try {
      if (isReady) this.notifier?.ready(line);
      else this.notifier?.status(line);
    } catch (err) {
      this.log.warn(`sd_notify failed: ${describeError(err)}`);
    }
  }
}
