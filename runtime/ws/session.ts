/**
 * @module
 * One WebSocket connection after the handshake: owns the socket, feeds the frame parser,
 * answers pings, runs the closing handshake (RFC 6455 §7: the server closes TCP first, after
 * its close frame is flushed; a peer that never answers our close, or never reads it, is cut
 * off after 5 s), fails the connection with the parser's close code, and at a handoff stops at
 * a frame boundary of what it sends (queued frames flushed), snapshots the parser (partial
 * inbound frames included) and gives up the fd. The app sees only the `ServerWebSocket`.
 *
 * A client that does not read costs a bounded amount (sessions/output.ts): above a mark of
 * queued output the session stops reading it (a ping flood then waits in the kernel, and only
 * the latest unanswered ping gets its pong, RFC 6455 §5.5.3); past the hard cap at an app's
 * send, or with no write progress for the server's write-stall time, the connection is closed
 * without a close frame (it would wait behind the bytes the client is not reading) and the app
 * sees `error`, then `close` with 1006 (§7.1.5), as a browser's full send buffer does.
 *
 *   open ─close sent/received→ closing ─flushed, TCP closed→ closed;  open ─handoff→ detached
 */
import { READ_EOF, READ_ERROR, type Socket, type SocketHandler } from "../io/mod.ts";
import { checkedMove, type MoveTable } from "../state_machine.ts";
import {
  type CarriedSession,
  carrySession,
  CLOSE_TIMEOUT_MS,
  type DetachedSession,
  drainedWithin,
  isWriteStalled,
  MAX_BUFFERED_BYTES,
  READ_PAUSE_BYTES,
  type RequestRecord,
  type SessionEnv,
  type SessionMeta,
} from "../sessions/mod.ts";
import { CLOSE_CODE } from "./constants.ts";
import { encodeClose, encodePong } from "./encoder.ts";
import { FrameParser, type FrameParserState } from "./parser.ts";
import { ServerWebSocket, WS_INTERNAL, type WsTransport } from "./socket.ts";

type WsState = "open" | "closing" | "closed" | "detached";

const MOVES: MoveTable<WsState> = {
  open: ["closing", "closed", "detached"],
  closing: ["closed"],
  closed: [],
  detached: [],
};

/**
 * What a WebSocket carries through a handoff (`ConnectionRecord.proto`), version 2. Version 1
 * (apprun before replays) had no `request`; it is still read.
 */
export interface WsProto {
  v: 2;
  parser: FrameParserState;
  url: string;
  protocol: string;
  binaryType: BinaryType;
  /** The generation whose process accepted the upgrade. */
  generation: number;
  listener: string | null;
  /** The opening request, replayed in the next process when the app has no resume hook. */
  request: RequestRecord | null;
}

/** The app's WebSocket hooks (named exports of the handler module). */
export interface WsHooks {
  /** Per WebSocket at handoff: a CBOR-able value carried to the next process. */
  onWebSocketHandoff?(socket: ServerWebSocket): unknown;
  /** Per WebSocket in the new process: re-attach listeners, restore state. */
  onWebSocketResume?(socket: ServerWebSocket, state: unknown, meta: SessionMeta): void;
}

/** Options for {@linkcode WsSession}. */
export interface WsSessionOptions {
  env: SessionEnv<WsHooks>;
  socket: Socket;
  ws: ServerWebSocket;
  parser: FrameParser;
  generation: number;
  listener: string | null;
  /** The opening request (null when not known: a version 1 record). */
  request: RequestRecord | null;
  /** Most bytes queued when the app sends more (default `MAX_BUFFERED_BYTES`). */
  maxBufferedAmount?: number;
}

/** One WebSocket connection. */
export class WsSession implements SocketHandler, WsTransport, CarriedSession {
  readonly kind = "ws";
  readonly ws: ServerWebSocket;
  readonly #env: SessionEnv<WsHooks>;
  readonly #socket: Socket;
  readonly #parser: FrameParser;
  readonly #generation: number;
  readonly #listener: string | null;
  readonly #request: RequestRecord | null;
  readonly #maxBuffered: number;
  #state: WsState = "open";
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #isPeerClosed = false;
  // Why reading is off (see #syncReading): each holds it off on its own.
  #isHandingOff = false;
  /** A replay holds the client's frames until every session resumed together is back. */
  #isHeld = false;
  /** Queued output is above READ_PAUSE_BYTES: read again once it is written. */
  #isOutputFull = false;
  /** The close is written; only its flush is awaited. */
  #isFlushingClose = false;
  /** The payload of the latest ping not answered yet (RFC 6455 §5.5.3). */
  #pendingPong: Uint8Array | null = null;

  constructor(opts: WsSessionOptions) {
    this.#env = opts.env;
    this.#socket = opts.socket;
    this.ws = opts.ws;
    this.#parser = opts.parser;
    this.#generation = opts.generation;
    this.#listener = opts.listener;
    this.#request = opts.request;
    this.#maxBuffered = opts.maxBufferedAmount ?? MAX_BUFFERED_BYTES;
  }

  /**
   * Takes the socket's events, opens the app's socket, and feeds `leftover` bytes. With
   * `isHeld` (a replay), the client's frames are not read until {@linkcode readFrames}.
   */
  start(leftover: Uint8Array, isResumed: boolean, isHeld = false): void {
    this.#isHeld = isHeld;
    this.#socket.setHandler(this);
    this.#env.track(this);
    this.ws[WS_INTERNAL].open(this, { isResumed });
    this.#syncReading();
    if (leftover.byteLength > 0) this.#onBytes(leftover);
  }

  /**
   * Reads the client's frames (a replayed session's socket waits, paused, until the app has
   * it back) — unless the session ended, a handoff stopped its reading, or its client has not
   * read what is queued for it.
   */
  readFrames(): void {
    this.#isHeld = false;
    this.#syncReading();
  }

  get bufferedAmount(): number {
    return this.#socket.bufferedAmount;
  }

  // --- SocketHandler ---

  onReadable(): void {
    const env = this.#env;
    const n = this.#socket.read(env.readBuf, env.readLen);
    if (n > 0) this.#onBytes(env.readBuf.subarray(0, n));
    else if (n === READ_EOF || n === READ_ERROR) this.#finish(CLOSE_CODE.ABNORMAL, "", false);
  }

  onHangup(): void {
    this.#finish(CLOSE_CODE.ABNORMAL, "", false);
  }

  onDrain(): void {
    if (this.#pendingPong !== null && this.#state === "open") {
      this.#socket.write(encodePong(this.#pendingPong), true);
    }
    this.#pendingPong = null;
    this.#isOutputFull = false;
    this.#syncReading();
  }

  // --- WsTransport (the app's socket) ---

  send(frame: Uint8Array): void {
    if (this.#state !== "open") return;
    const queued = this.#socket.bufferedAmount;
    if (queued > this.#maxBuffered) {
      return this.#cutOff(`the client has not read ${queued} queued bytes`);
    }
    this.#socket.write(frame, true);
    this.#checkOutput();
  }

  close(code: number | undefined, reason: string): void {
    this.#startClose(code, reason);
  }

  // --- CarriedSession ---

  handOff(deadline: number): Promise<DetachedSession | null> {
    this.#isHandingOff = true;
    const ws = this.ws;
    return carrySession({
      kind: "ws",
      session: this,
      socket: this.#socket,
      env: this.#env,
      isOpen: () => this.#state === "open",
      flushed: () => ws[WS_INTERNAL].flushed(),
      appState: () => this.#env.hooks.onWebSocketHandoff?.(ws),
      proto: (): WsProto => ({
        v: 2,
        parser: this.#parser.snapshot(),
        url: ws.url,
        protocol: ws.protocol,
        binaryType: ws.binaryType,
        generation: this.#generation,
        listener: this.#listener,
        request: this.#request,
      }),
      buffered: () => new Uint8Array(0),
      listener: this.#listener,
      giveUp: (reason) => {
        this.#env.log.error(
          `WebSocket fd ${this.#socket.fd} not carried (${reason}): closing 1012`,
        );
        this.#closeForRestart();
      },
      markDetached: () => this.#move("detached"),
    }, deadline);
  }

  closeForShutdown(): void {
    this.#startClose(CLOSE_CODE.GOING_AWAY, "server shutting down");
  }

  checkDeadline(now: number): void {
    if (this.#state !== "open" && this.#state !== "closing") return;
    if (isWriteStalled(this.#socket, now, this.#env.writeStallMs)) {
      this.#cutOff(`the client took no byte for ${this.#env.writeStallMs} ms`);
    }
  }

  // --- protocol ---

  #onBytes(bytes: Uint8Array): void {
    const internal = this.ws[WS_INTERNAL];
    for (const ev of this.#parser.push(bytes)) {
      switch (ev.kind) {
        case "text":
        case "binary":
          internal.message(ev.data);
          break;
        case "ping":
          // §5.5.3: while output waits, only the latest ping is answered (on drain).
          if (this.#state !== "open") break;
          if (this.#socket.bufferedAmount > 0) this.#pendingPong = ev.data;
          else this.#socket.write(encodePong(ev.data), true);
          break;
        case "pong":
          break;
        case "close":
          this.#onPeerClose(ev.code, ev.reason);
          break;
        case "fail":
          this.#fail(ev.error.closeCode, ev.error.message);
          break;
      }
    }
    this.#checkOutput();
  }

  /** Stops reading while the client has not read READ_PAUSE_BYTES of what we sent. */
  #checkOutput(): void {
    if (this.#isOutputFull || this.#socket.bufferedAmount <= READ_PAUSE_BYTES) return;
    this.#isOutputFull = true;
    this.#syncReading();
  }

  /** Reading is on while the session is open or closing and nothing above holds it off. */
  #syncReading(): void {
    const socket = this.#socket;
    if (!socket.isOpen) return;
    const isWanted = (this.#state === "open" || this.#state === "closing") &&
      !this.#isHandingOff && !this.#isHeld && !this.#isOutputFull && !this.#isFlushingClose;
    if (isWanted && !socket.isReading) socket.resumeReading();
    else if (!isWanted && socket.isReading) socket.pauseReading();
  }

  /**
   * The client does not read: close TCP now, discarding what is queued (a close frame would
   * wait behind it: RFC 6455 §7.1.7 asks for one only where it can be sent). The app's events
   * come after its current call returns (`send` may be what brought us here).
   */
  #cutOff(why: string): void {
    this.#env.log.warn(`WebSocket fd ${this.#socket.fd}: ${why}: closing the connection`);
    if (this.#state === "open") {
      this.#move("closing");
      this.ws[WS_INTERNAL].closing();
    }
    this.#socket.close();
    queueMicrotask(() => {
      this.ws[WS_INTERNAL].error(why);
      this.#finish(CLOSE_CODE.ABNORMAL, "", false);
    });
  }

  /** §5.5.1: answer a close with a close (echoing its code), then close TCP. */
  #onPeerClose(code: number, reason: string): void {
    this.#isPeerClosed = true;
    if (this.#state === "open") {
      this.#move("closing");
      this.ws[WS_INTERNAL].closing();
      const echo = code === CLOSE_CODE.NO_STATUS ? {} : { code };
      this.#socket.write(encodeClose(echo), true);
    }
    this.#closeAfterFlush(code, reason, true);
  }

  #startClose(code: number | undefined, reason: string): void {
    if (this.#state !== "open") return;
    this.#move("closing");
    this.ws[WS_INTERNAL].closing();
    this.#socket.write(encodeClose(code === undefined ? {} : { code, reason }), true);
    this.#closeTimer = setTimeout(
      () => this.#finish(CLOSE_CODE.ABNORMAL, "", false),
      CLOSE_TIMEOUT_MS,
    );
  }

  /** §7.1.7: send the close code of the failure, then close. */
  #fail(code: number, message: string): void {
    this.#env.log.debug(`fd ${this.#socket.fd}: failing WebSocket: ${message}`);
    if (this.#state === "open") {
      this.#move("closing");
      this.#socket.write(encodeClose({ code, reason: message }), true);
    }
    this.ws[WS_INTERNAL].error(message);
    this.#closeAfterFlush(code, message, false);
  }

  /**
   * Not carried: close with 1012. handOff paused reading; read again so the peer's close
   * reply completes the handshake now, instead of holding the handoff for CLOSE_TIMEOUT_MS.
   */
  #closeForRestart(): void {
    this.#isHandingOff = false;
    this.#startClose(CLOSE_CODE.SERVICE_RESTART, "service restart");
    this.#syncReading();
  }

  /** Closes TCP once our last frame is written — or, unread, after CLOSE_TIMEOUT_MS. */
  #closeAfterFlush(code: number, reason: string, wasClean: boolean): void {
    this.#isFlushingClose = true;
    this.#syncReading();
    drainedWithin(this.#socket).then((isFlushed) => {
      this.#finish(code, reason, isFlushed && wasClean && this.#isPeerClosed);
    });
  }

  #finish(code: number, reason: string, wasClean: boolean): void {
    if (this.#state === "closed" || this.#state === "detached") return;
    this.#move("closed");
    clearTimeout(this.#closeTimer);
    this.#socket.close();
    this.#env.untrack(this);
    this.ws[WS_INTERNAL].closed(code, reason, wasClean);
  }

  #move(next: WsState): void {
    this.#state = checkedMove(MOVES, this.#state, next, `WebSocket fd ${this.#socket.fd}`);
  }
}
