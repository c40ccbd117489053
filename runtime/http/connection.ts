/**
 * @module
 * One HTTP/1.1 connection as an explicit state machine over a `Socket`: reads requests,
 * enforces the head/body/idle timeouts, runs one exchange at a time (pipelined requests wait
 * in the inbound buffer and are answered in order), keeps the connection alive or closes it
 * politely (FIN, then read and discard for a short linger so the last response is not lost to
 * a reset). It owns its socket until it closes it or `detach()` hands the fd to the caller.
 *
 *   idle ─bytes→ head ─head parsed→ body ─body done→ handler ─response→ writing ─done→ idle
 *     (a request without a body goes from head to handler; any state → closing → closed)
 *
 * A handler that has not answered gets 503 at `handlerTimeoutMs` (when set); once its client
 * has gone (FIN: `req.signal` aborted) it gets `idleTimeoutMs` more, then the fd is closed.
 */
import { type EventLoop, READ_EOF, READ_ERROR, Socket, type SocketHandler } from "../io/mod.ts";
import { checkedMove, type MoveTable } from "../state_machine.ts";
import type { Logger } from "../log.ts";
import { decodeSockAddr, rawPeerAddr } from "../sys/mod.ts";
import { HttpError } from "./errors.ts";
import { Exchange, type ExchangeHost } from "./exchange.ts";
import { Inbound } from "./inbound.ts";
import type { HttpLimits } from "./limits.ts";
import { parseRequestHead, type RequestHead } from "./parser.ts";
import type { FetchHandler, RemoteAddr } from "./types.ts";
import { CONTINUE_100, errorResponseBytes } from "./writer.ts";
import type { EventStreamOffer, Takeover, TakeoverFraming } from "./takeover.ts";

/** Where a connection is in its life. */
export type ConnState =
  | "idle"
  | "head"
  | "body"
  | "handler"
  | "writing"
  | "closing"
  | "upgraded"
  | "detached"
  | "closed";

const TRANSITIONS: MoveTable<ConnState> = {
  idle: ["head", "body", "handler", "closing", "closed", "detached"],
  head: ["body", "handler", "closing", "closed", "detached"],
  body: ["handler", "writing", "closing", "closed"],
  handler: ["writing", "closing", "closed"],
  writing: ["idle", "closing", "closed", "upgraded"],
  closing: ["closed"],
  upgraded: ["closed", "detached"],
  detached: [],
  closed: [],
};

/** `performance.now()`'s origin in wall-clock ms. */
const TIME_ORIGIN = performance.timeOrigin;
/** After our FIN, how long we keep reading (and dropping) before closing. */
const LINGER_MS = 2000;
/**
 * Queued output past which no further pipelined request is parsed until the queue drains:
 * input is capped (`maxPipelineBytes`), and so must be what a client that does not read makes
 * us hold (RFC 9112 §9.3.2 lets a server answer pipelined requests at its own pace).
 */
const OUTPUT_HWM = 64 * 1024;

/** What every connection of a server shares. */
export interface ConnectionContext {
  readonly loop: EventLoop;
  readonly limits: HttpLimits;
  readonly log: Logger;
  /** The shared read buffer and its length as a bigint (for the fast FFI path). */
  readonly readBuf: Uint8Array;
  readonly readLen: bigint;
  /** A coarse clock (ms, performance.now() base) updated by the server's sweep. */
  now(): number;
  /** Every response gets `Connection: close` (graceful stop without handoff). */
  readonly isClosingAll: boolean;
  /** The process is handing off: a connection that becomes idle stops reading and waits. */
  readonly isHandingOff: boolean;
  onClosed(conn: HttpConnection): void;
  /**
   * The takeover `response` starts (a WebSocket, an SSE stream), claimed once; else undefined.
   * `eventStream` is given for a streaming `text/event-stream` body (takeover.ts).
   */
  takeoverOf(
    response: Response,
    conn: HttpConnection,
    eventStream?: EventStreamOffer,
  ): Takeover | undefined;
  /** A takeover got the connection: it is no longer this server's HTTP connection. */
  onUpgraded(conn: HttpConnection): void;
  /** A connection just became idle (no request in progress). */
  onIdle(conn: HttpConnection): void;
  /** An exchange starts (+1) or stops (-1) waiting outside its turn (ExchangeHost). */
  notePending(delta: 1 | -1): void;
}

/** One client connection. */
export class HttpConnection implements SocketHandler, ExchangeHost {
  readonly socket: Socket;
  readonly listenerName: string;
  readonly defaultHost: string;
  /** The app's handler for requests on this connection (its listener's). */
  readonly handler: FetchHandler;
  /** performance.now() deadline of the current state's timeout; 0 when none applies. */
  deadline = 0;
  /** Requests served on this connection. */
  requests = 0;
  /** performance.now() by which the handler must have started its response; 0 when none. */
  #handlerDeadline = 0;
  readonly #ctx: ConnectionContext;
  #state: ConnState = "idle";
  readonly #in = new Inbound();
  #resumeAt = 0;
  #exchange: Exchange | null = null;
  #isPeerEnded = false;
  #isProcessing = false;
  /** The peer as raw sockaddr bytes, captured while the fd was surely ours. */
  readonly #rawPeer: Uint8Array | null;
  /** The peer formatted, on first use. */
  #peer: RemoteAddr | null = null;

  /**
   * Takes ownership of `fd`. `buffered` are bytes already read from it (after a handoff);
   * `peer` is its peer's raw sockaddr from accept4(2), else it is asked of the fd now.
   */
  constructor(
    ctx: ConnectionContext,
    fd: number,
    opts: {
      listenerName: string;
      defaultHost: string;
      handler: FetchHandler;
      buffered?: Uint8Array;
      /** The peer's raw sockaddr from accept4 (else read once, here). */
      peer?: Uint8Array;
    },
  ) {
    this.#ctx = ctx;
    this.#rawPeer = opts.peer ?? rawPeerAddr(fd);
    this.listenerName = opts.listenerName;
    this.handler = opts.handler;
    this.defaultHost = opts.defaultHost;
    this.socket = new Socket(ctx.loop, fd, this);
    this.deadline = ctx.now() + ctx.limits.idleTimeoutMs;
    if (opts.buffered && opts.buffered.byteLength > 0) {
      this.#in.push(opts.buffered, false);
      this.#process();
    }
  }

  get state(): ConnState {
    return this.#state;
  }

  /** No request in progress: idle, or only part of a head received. */
  get isIdle(): boolean {
    return this.#state === "idle" || this.#state === "head";
  }

  get log(): Logger {
    return this.#ctx.log;
  }

  get limits(): HttpLimits {
    return this.#ctx.limits;
  }

  get mustClose(): boolean {
    return this.#ctx.isClosingAll;
  }

  notePending(delta: 1 | -1): void {
    this.#ctx.notePending(delta);
  }

  /** Wall-clock ms from the server's coarse clock (updated by its sweep): the Date field. */
  get wallClockMs(): number {
    return TIME_ORIGIN + this.#ctx.now();
  }

  /** The peer's raw sockaddr (what a handoff records), or null when unknown. */
  get rawPeer(): Uint8Array | null {
    return this.#rawPeer;
  }

  /** The peer, formatted on first use. Never asks the fd: it may be closed and reused. */
  get remoteAddr(): RemoteAddr {
    if (this.#peer !== null) return this.#peer;
    const peer = this.#rawPeer;
    const addr = peer === null ? null : decodeSockAddr(peer, peer.byteLength);
    const formatted: RemoteAddr = addr === null
      ? { transport: "unix", path: "" }
      : addr.transport === "tcp"
      ? { transport: "tcp", hostname: addr.hostname, port: addr.port }
      : { transport: "unix", path: addr.path };
    this.#peer = formatted;
    return formatted;
  }

  // --- SocketHandler ---

  onReadable(): void {
    const ctx = this.#ctx;
    const n = this.socket.read(ctx.readBuf, ctx.readLen);
    if (n > 0) {
      if (this.#state === "closing") return; // lingering: drop what the peer still sends
      this.#in.push(ctx.readBuf.subarray(0, n), true);
      this.#process();
      this.#in.keep();
    } else if (n === READ_EOF) {
      this.#onEof();
    } else if (n === READ_ERROR) {
      this.destroy();
    }
  }

  onHangup(): void {
    this.destroy();
  }

  /** The output queue emptied: parse the pipelined requests held back meanwhile. */
  onDrain(): void {
    // Handing off: what is buffered travels with the fd (the server detaches it on drain).
    if (!this.isIdle || this.#isProcessing || this.#ctx.isHandingOff) return;
    if (!this.#isPeerEnded) this.socket.resumeReading();
    this.#process();
    if (this.#isPeerEnded && this.#state === "head") return this.destroy();
  }

  // --- ExchangeHost ---

  pauseReading(): void {
    this.socket.pauseReading();
  }

  resumeReading(): void {
    if (!this.#isPeerEnded && this.#state !== "closing") this.socket.resumeReading();
  }

  onFirstPull(): void {
    const ex = this.#exchange;
    if (ex && ex.head.expect === "100-continue" && ex.head.minor === 1 && !ex.isResponseStarted) {
      this.socket.write(CONTINUE_100, true);
    }
  }

  onResponseStart(): void {
    this.#handlerDeadline = 0;
    if (this.#state === "body" || this.#state === "handler") this.#transition("writing");
  }

  onExchangeDone(isClose: boolean): void {
    this.#exchange = null;
    if (this.#state === "closed" || this.#state === "closing") return;
    if (isClose) return this.#beginClose();
    this.#transition("idle");
    this.deadline = this.#ctx.now() + this.#ctx.limits.idleTimeoutMs;
    if (this.#isPeerEnded && this.#in.length === 0) return this.#beginClose();
    if (this.#ctx.isHandingOff) {
      // Stop here: pipelined bytes stay buffered and travel with the fd (docs/design.md, "What gets handed off").
      this.socket.pauseReading();
      return this.#ctx.onIdle(this);
    }
    if (!this.#isPeerEnded) this.socket.resumeReading();
    if (!this.#isProcessing) this.#process();
    // The peer sent FIN: a partial request behind the answered ones can never complete.
    if (this.#isPeerEnded && this.#state === "head") return this.destroy();
    if (this.#state === "idle") this.#ctx.onIdle(this);
  }

  onExchangeFailed(): void {
    this.destroy();
  }

  takeoverOf(response: Response, eventStream?: EventStreamOffer): Takeover | undefined {
    return this.#ctx.takeoverOf(response, this, eventStream);
  }

  onTakeover(takeover: Takeover, head: Uint8Array, framing: TakeoverFraming): void {
    if (!this.socket.isOpen || this.socket.isBroken) return takeover.abandon();
    this.#transition("upgraded");
    this.deadline = 0;
    this.#exchange = null;
    this.socket.write(head);
    const leftover = this.#in.snapshot();
    this.#in.clear();
    this.#ctx.onUpgraded(this);
    takeover.attach(this.socket, leftover, framing);
    // Reading may have paused (EOF, backpressure): the session needs to see what comes.
    if (this.socket.isOpen) this.socket.resumeReading();
  }

  // --- timeouts and teardown ---

  /** Applies the current state's timeout; called by the server's sweep. */
  checkDeadline(now: number): void {
    const s = this.socket;
    if (s.bufferedAmount > 0 && now - s.lastWriteProgress > this.#ctx.limits.bodyTimeoutMs) {
      this.#ctx.log.debug(`fd ${s.fd}: peer stopped reading the response, closing`);
      return this.destroy();
    }
    if (this.#handlerDeadline !== 0 && now >= this.#handlerDeadline) return this.#handlerTimedOut();
    if (this.deadline === 0 || now < this.deadline) return;
    switch (this.#state) {
      case "idle":
        // Still sending the last answers: the stalled-reader check above is what applies.
        if (s.bufferedAmount > 0) return;
        return this.destroy();
      case "closing":
        return this.destroy();
      case "head":
        return this.#refuse(new HttpError("header-timeout", "request head not received in time"));
      case "handler":
        // Only set once the client has gone: nobody waits for this answer any more.
        this.#ctx.log.debug(`fd ${s.fd}: client gone and the handler still running: closing`);
        return this.destroy();
      case "body":
      case "writing": {
        const ex = this.#exchange;
        if (ex === null || ex.isBodyDone) return;
        const err = new HttpError("body-timeout", "request body stalled");
        if (!ex.answerError(err.status)) this.destroy();
        ex.abort(err);
        return;
      }
    }
  }

  /** The handler has not answered within `handlerTimeoutMs`: 503, close, abort its signal. */
  #handlerTimedOut(): void {
    this.#handlerDeadline = 0;
    const ex = this.#exchange;
    if (ex === null || ex.isResponseStarted) return;
    const { method, target } = ex.head;
    this.#ctx.log.warn(
      `handler did not answer ${method} ${target.slice(0, 100)} within ` +
        `${this.#ctx.limits.handlerTimeoutMs} ms: 503`,
    );
    if (!ex.answerError(503)) this.destroy();
    ex.abort(new Error("handler timeout"));
  }

  /** Closes now: aborts the request in progress and closes the fd. */
  destroy(): void {
    if (this.#state === "closed" || this.#state === "detached") return;
    this.#transition("closed");
    this.deadline = 0;
    this.#exchange?.abort(new Error("connection closed"));
    this.#exchange = null;
    this.#in.clear();
    this.socket.close();
    this.#ctx.onClosed(this);
  }

  /**
   * Gives up on the request in progress (drain deadline): answers `status` if nothing was
   * written yet, then closes; a response already under way is cut off.
   */
  abandon(status: number): void {
    const ex = this.#exchange;
    if (ex === null) return this.isIdle ? this.#beginClose() : undefined;
    if (!ex.answerError(status)) this.destroy();
    ex.abort(new Error("abandoned at the drain deadline"));
  }

  /** Closes an idle connection politely (graceful stop). */
  closeIdle(): void {
    if (this.isIdle) this.#beginClose();
  }

  /**
   * Stops serving and hands over the fd and the bytes read but not consumed. Only for an idle
   * connection; the caller owns the fd afterwards.
   */
  detach(): { fd: number; buffered: Uint8Array } {
    if (!this.isIdle) throw new Error(`connection fd ${this.socket.fd} is busy (${this.#state})`);
    const buffered = this.#in.snapshot();
    this.#transition("detached");
    this.deadline = 0;
    this.#in.clear();
    const fd = this.socket.detach();
    this.#ctx.onClosed(this);
    return { fd, buffered };
  }

  /**
   * {@linkcode detach} for the common case, in bulk at a handoff: idle, nothing read, nothing
   * queued. The fd (the caller's; the loop forgot it) or -1 when this connection needs
   * `detach()`. The caller drops the connection from its books itself (no `onClosed`).
   */
  handOver(): number {
    if (this.#state !== "idle" || this.#in.length > 0 || this.socket.bufferedAmount > 0) return -1;
    this.#transition("detached");
    this.deadline = 0;
    return this.socket.release();
  }

  // --- the request cycle ---

  #transition(next: ConnState): void {
    this.#state = checkedMove(TRANSITIONS, this.#state, next, `connection fd ${this.socket.fd}`);
  }

  #process(): void {
    this.#isProcessing = true;
    try {
      for (;;) {
        const st = this.#state;
        if (st === "idle" || st === "head") {
          if (this.socket.bufferedAmount > OUTPUT_HWM) {
            // The client is not reading our answers: read and parse nothing more for now.
            this.socket.pauseReading();
            return;
          }
          if (!this.#parseHead()) return;
        } else if (
          (st === "body" || st === "writing") && this.#exchange !== null &&
          !this.#exchange.isBodyDone
        ) {
          if (!this.#feedBody()) return;
        } else {
          if (
            (st === "handler" || st === "writing") &&
            this.#in.length > this.#ctx.limits.maxPipelineBytes
          ) this.socket.pauseReading();
          return;
        }
      }
    } finally {
      this.#isProcessing = false;
    }
  }

  /** Parses a head from the inbound bytes; true when an exchange started. */
  #parseHead(): boolean {
    if (this.#in.length === 0) return false;
    let result;
    try {
      result = parseRequestHead(this.#in.view(), this.#resumeAt, this.#ctx.limits);
    } catch (err) {
      this.#refuse(err);
      return false;
    }
    if (result.kind === "more") {
      this.#resumeAt = result.resumeAt;
      if (this.#state === "idle") {
        this.#transition("head");
        this.deadline = this.#ctx.now() + this.#ctx.limits.headerTimeoutMs;
      }
      return false;
    }
    this.#in.consume(result.length);
    this.#resumeAt = 0;
    return this.#startExchange(result.head);
  }

  #startExchange(head: RequestHead): boolean {
    const limits = this.#ctx.limits;
    if (head.contentLength > limits.maxBodyBytes) {
      this.#refuse(new HttpError("body-too-large", `Content-Length ${head.contentLength}`));
      return false;
    }
    if (head.expect !== null && head.minor === 1 && head.expect !== "100-continue") {
      this.#refuse(new HttpError("expectation-failed", `Expect: ${head.expect}`));
      return false;
    }
    const ex = new Exchange(this, head);
    this.#exchange = ex;
    this.requests++;
    const now = this.#ctx.now();
    this.#handlerDeadline = limits.handlerTimeoutMs > 0 ? now + limits.handlerTimeoutMs : 0;
    if (ex.isBodyDone) {
      this.#transition("handler");
      // A request pipelined before the client left: the same grace as in #onEof.
      this.deadline = this.#isPeerEnded ? now + limits.idleTimeoutMs : 0;
    } else {
      this.#transition("body");
      this.deadline = now + limits.bodyTimeoutMs;
    }
    ex.run(this.handler);
    return true;
  }

  /** Feeds body bytes; true when the body completed (more may follow). */
  #feedBody(): boolean {
    const ex = this.#exchange!;
    if (this.#in.length === 0) return false;
    let used: number;
    try {
      used = ex.body!.push(this.#in.view());
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 400;
      this.#ctx.log.debug(`fd ${this.socket.fd}: bad request body: ${(err as Error).message}`);
      if (!ex.answerError(status)) this.destroy();
      ex.abort(err);
      return false;
    }
    this.#in.consume(used);
    if (!ex.isBodyDone) {
      this.deadline = this.#ctx.now() + this.#ctx.limits.bodyTimeoutMs;
      return false;
    }
    this.deadline = 0;
    if (this.#state === "body") this.#transition("handler");
    return true;
  }

  /** Answers a request we will not serve with its status, then closes (RFC 9112 §9.6). */
  #refuse(err: unknown): void {
    const status = err instanceof HttpError ? err.status : 400;
    this.#ctx.log.debug(`fd ${this.socket.fd}: refused: ${(err as Error).message}`);
    this.socket.write(errorResponseBytes(status, true), true);
    this.#beginClose();
  }

  #onEof(): void {
    this.#isPeerEnded = true;
    // The fd stays readable at EOF: stop watching reads or the level-triggered loop spins.
    this.socket.pauseReading();
    switch (this.#state) {
      case "idle":
      case "head":
      case "body":
      case "closing":
        return this.destroy();
      case "handler":
      case "writing":
        // The client sent FIN: it may only have half-closed, so the response (and any
        // pipelined ones) are still written; but with nothing queued behind this request,
        // the app is told the client left (as Go's net/http does).
        if (this.#in.length === 0) {
          this.#exchange?.signalClientGone(new Error("client closed the connection"));
        }
        // A handler that never answers must not keep the fd (CLOSE_WAIT) for ever: it gets
        // the idle timeout. Once writing, a gone client's reset ends the connection.
        if (this.#state === "handler") {
          this.deadline = this.#ctx.now() + this.#ctx.limits.idleTimeoutMs;
        }
        return;
    }
  }

  #beginClose(): void {
    if (this.#state === "closing" || this.#state === "closed") return;
    this.#transition("closing");
    this.#exchange?.abort(new Error("connection closing"));
    this.#exchange = null;
    this.#in.clear();
    this.deadline = 0;
    this.socket.drained().then(() => {
      if (this.#state !== "closing") return;
      if (!this.socket.isOpen || this.socket.isBroken || this.#isPeerEnded) return this.destroy();
      this.socket.shutdownWrite();
      this.socket.resumeReading();
      this.deadline = this.#ctx.now() + LINGER_MS;
    });
  }
}
