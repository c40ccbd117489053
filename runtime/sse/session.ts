/**
 * @module
 * One SSE response in progress, after its head: writes what its source produces — the events
 * of apprun's `sse()` stream, or the bytes of a `text/event-stream` body the app streams — as
 * chunks (or raw bytes for HTTP/1.0), notices the client leaving, and at a handoff stops its
 * source at an event boundary and gives up the fd with the last event id, so the next process
 * continues the same response (sse/resume.ts). When the source ends on a keep-alive
 * connection, the connection goes back to serving HTTP requests. Owns its socket until it ends
 * or is handed off. A client that does not read costs a bounded amount (sessions/output.ts):
 * past the hard cap of queued bytes at a write, or with no write progress for the server's
 * write-stall time, the connection is closed and the source released; the last chunk of an
 * ended stream waits at most the close timeout.
 *
 *   open ─source ended, client gone, stop→ ended;  open ─handoff→ detached
 */
import { READ_EOF, READ_ERROR, type Socket, type SocketHandler } from "../io/mod.ts";
import {
  type CarriedSession,
  carrySession,
  closeWhenDrained,
  type DetachedSession,
  drainedWithin,
  isWriteStalled,
  MAX_BUFFERED_BYTES,
  type RequestRecord,
  type SessionEnv,
  type SessionMeta,
} from "../sessions/mod.ts";
import { describeError } from "../errors.ts";
import { encodeChunk, LAST_CHUNK, type TakeoverFraming } from "../http/mod.ts";
import type { SSEStream } from "./stream.ts";

const encoder = new TextEncoder();
/** Pipelined request bytes kept while a stream runs; past this, reading pauses. */
const MAX_PIPELINED = 64 * 1024;

/** The app's SSE hooks (named exports of the handler module); see mod.ts of the project. */
export interface SseHooks {
  /** Per `sse()` stream at handoff: a CBOR-able value carried to the next process. */
  onSSEHandoff?(stream: SSEStream): unknown;
  /** Per `sse()` stream in the new process: start sending events again. */
  onSSEResume?(stream: SSEStream, state: unknown, meta: SessionMeta): void;
}

/**
 * What an SSE stream carries through a handoff (`ConnectionRecord.proto`), version 2. Version 1
 * (apprun before replays) had no `source` (it was always "sse") and no `request`; still read.
 */
export interface SseProto {
  v: 2;
  url: string;
  lastEventId: string;
  framing: TakeoverFraming;
  generation: number;
  /** Where the events came from: apprun's `sse()` (the hooks apply) or a Response body. */
  source: "sse" | "body";
  /** The opening request, replayed in the next process when no hook takes the stream. */
  request: RequestRecord | null;
}

/** Where an SSE response's bytes come from. */
export interface SseSource {
  readonly kind: SseProto["source"];
  readonly url: string;
  /** The id a client that read everything written so far would reconnect with. */
  readonly lastEventId: string;
  /** The session owns the connection: start writing through `out`. */
  start(out: SseOutput): void;
  /** Handoff: resolves once nothing more will be written and what was ends between events. */
  stop(): Promise<void>;
  /** The state to carry (the app's hook); throws when the stream cannot be carried. */
  handoffState(hooks: SseHooks): unknown;
  /** The session is over (ended, client gone, handed off): let go of the app's side. */
  release(reason: string): void;
}

/** What a source writes through. */
export interface SseOutput {
  /** Writes bytes (or text, UTF-8) of the body; false when the client is gone. */
  write(data: Uint8Array | string): boolean;
  /** The source ended: finish the response. */
  end(): void;
  /** The source failed: close without finishing the response (the client sees it cut). */
  fail(err: unknown): void;
  readonly bufferedAmount: number;
  drained(): Promise<void>;
}

type SseState = "open" | "ended" | "detached";

/** Options for {@linkcode SseSession}. */
export interface SseSessionOptions {
  env: SessionEnv<SseHooks>;
  socket: Socket;
  source: SseSource;
  framing: TakeoverFraming;
  /** Bytes read after the request (a pipelined request, served when the stream ends). */
  buffered: Uint8Array;
  generation: number;
  listener: string | null;
  request: RequestRecord | null;
}

/** One SSE response in progress; owns the socket until it ends or is handed off. */
export class SseSession implements SocketHandler, SseOutput, CarriedSession {
  readonly kind = "sse";
  readonly #o: SseSessionOptions;
  readonly #socket: Socket;
  readonly #source: SseSource;
  #buffered: Uint8Array;
  #state: SseState = "open";

  constructor(o: SseSessionOptions) {
    this.#o = o;
    this.#socket = o.socket;
    this.#source = o.source;
    this.#buffered = o.buffered;
  }

  start(): void {
    this.#socket.setHandler(this);
    this.#o.env.track(this);
    this.#source.start(this);
  }

  // --- SseOutput ---

  write(data: Uint8Array | string): boolean {
    if (this.#state !== "open") return false;
    const queued = this.#socket.bufferedAmount;
    if (queued > MAX_BUFFERED_BYTES) {
      this.#cutOff(`the client has not read ${queued} queued bytes`);
      return false;
    }
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    if (bytes.byteLength === 0) return true; // an empty chunk would end the body
    if (this.#o.framing === "chunked") return this.#socket.write(encodeChunk(bytes), true);
    return this.#socket.write(bytes, typeof data === "string");
  }

  get bufferedAmount(): number {
    return this.#socket.bufferedAmount;
  }

  drained(): Promise<void> {
    return this.#socket.drained();
  }

  /** The source ended: finish the response; a keep-alive connection serves HTTP again. */
  end(): void {
    if (this.#state !== "open") return;
    this.#state = "ended";
    this.#o.env.untrack(this);
    this.#source.release("the response ended");
    endResponse(this.#socket, this.#o.framing, this.#buffered, this.#o.env, this.#o.listener);
  }

  fail(err: unknown): void {
    if (this.#state !== "open") return;
    this.#o.env.log.error(`SSE stream ${this.#source.url} failed: ${describeError(err)}`);
    this.#state = "ended";
    this.#o.env.untrack(this);
    this.#source.release("the response failed");
    this.#socket.close();
  }

  // --- SocketHandler ---

  onReadable(): void {
    const env = this.#o.env;
    const n = this.#socket.read(env.readBuf, env.readLen);
    if (n > 0) {
      // A request pipelined behind the stream: kept for when the stream ends.
      const next = new Uint8Array(this.#buffered.byteLength + n);
      next.set(this.#buffered);
      next.set(env.readBuf.subarray(0, n), this.#buffered.byteLength);
      this.#buffered = next;
      if (next.byteLength > MAX_PIPELINED) this.#socket.pauseReading();
    } else if (n === READ_EOF || n === READ_ERROR) this.#gone();
  }

  onHangup(): void {
    this.#gone();
  }

  // --- CarriedSession ---

  handOff(deadline: number): Promise<DetachedSession | null> {
    const o = this.#o;
    const source = this.#source;
    return carrySession({
      kind: "sse",
      session: this,
      socket: this.#socket,
      env: o.env,
      isOpen: () => this.#state === "open",
      flushed: () => source.stop(),
      appState: () => source.handoffState(o.env.hooks),
      proto: (): SseProto => ({
        v: 2,
        url: source.url,
        lastEventId: source.lastEventId,
        framing: o.framing,
        generation: o.generation,
        source: source.kind,
        request: o.request,
      }),
      buffered: () => this.#buffered,
      listener: o.listener,
      giveUp: (reason) => {
        o.env.log.error(`SSE stream ${source.url} not carried (${reason}): ending it`);
        this.end();
      },
      markDetached: () => {
        this.#state = "detached";
        source.release("handed off");
      },
    }, deadline);
  }

  closeForShutdown(): void {
    this.end();
  }

  checkDeadline(now: number): void {
    const stallMs = this.#o.env.writeStallMs;
    if (this.#state === "open" && isWriteStalled(this.#socket, now, stallMs)) {
      this.#cutOff(`the client took no byte for ${stallMs} ms`);
    }
  }

  /**
   * The client does not read: close the connection now, what is queued discarded, and release
   * the app's side at once (an `sse()` stream is closed before the send that brought us here
   * returns, so the app's loop sees `isClosed`).
   */
  #cutOff(why: string): void {
    this.#o.env.log.warn(`SSE stream ${this.#source.url}: ${why}: closing the connection`);
    this.#state = "ended";
    this.#o.env.untrack(this);
    this.#socket.close();
    this.#source.release(why);
  }

  #gone(): void {
    if (this.#state === "detached") return;
    if (this.#state === "open") {
      this.#state = "ended";
      this.#o.env.untrack(this);
      this.#source.release("the client went away");
    }
    this.#socket.close();
  }
}

/**
 * Finishes an SSE response on `socket`: the last chunk, then the connection serves HTTP again
 * (with the pipelined `buffered` bytes) — or, close-delimited, the connection closes.
 */
export function endResponse(
  socket: Socket,
  framing: TakeoverFraming,
  buffered: Uint8Array,
  env: SessionEnv,
  listener: string | null,
): void {
  if (framing === "close") return closeWhenDrained(socket);
  socket.write(LAST_CHUNK, true);
  // A client that does not take the rest within the close timeout is cut off.
  drainedWithin(socket).then((isFlushed) => {
    if (!socket.isOpen) return;
    if (!isFlushed || socket.isBroken) return socket.close();
    const fd = socket.detach();
    env.adoptHttp(fd, buffered, listener);
  });
}
