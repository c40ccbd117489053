/**
 * @module
 * One SSE response in progress, after its head: writes each event as one chunk (or raw bytes
 * for HTTP/1.0), notices the client leaving, and at a handoff gives up the fd with the last
 * event id so the next process continues the same response (`resumeSse`). When the app ends the
 * stream on a keep-alive connection, the connection goes back to serving HTTP requests. Owns its
 * socket until it ends or is handed off.
 */
import { READ_EOF, READ_ERROR, Socket, type SocketHandler } from "../io/mod.ts";
import {
  type CarriedSession,
  carrySession,
  type DetachedSession,
  type SessionEnv,
  type SessionMeta,
} from "../sessions/mod.ts";
import type { ConnectionRecord } from "../handoff/mod.ts";
import { describeError } from "../errors.ts";
import { encodeChunk, LAST_CHUNK } from "../http/mod.ts";
import { SSEStream, type SseTransport } from "./stream.ts";

const encoder = new TextEncoder();

/** The app's SSE hooks (named exports of the handler module); see mod.ts of the project. */
export interface SseHooks {
  /** Per SSE stream at handoff: a CBOR-able value carried to the next process. */
  onSSEHandoff?(stream: SSEStream): unknown;
  /** Per SSE stream in the new process: start sending events again. */
  onSSEResume?(stream: SSEStream, state: unknown, meta: SessionMeta): void;
}

/** What an SSE stream carries through a handoff (`ConnectionRecord.proto`), version 1. */
export interface SseProto {
  v: 1;
  url: string;
  lastEventId: string;
  framing: "chunked" | "close";
  generation: number;
}

type SseState = "open" | "ended" | "detached";

/** One SSE response in progress; owns the socket until it ends or is handed off. */
export class SseSession implements SocketHandler, SseTransport, CarriedSession {
  readonly kind = "sse";
  readonly #env: SessionEnv<SseHooks>;
  readonly #socket: Socket;
  readonly #stream: SSEStream;
  readonly #framing: "chunked" | "close";
  readonly #generation: number;
  readonly #listener: string | null;
  #buffered: Uint8Array;
  #state: SseState = "open";

  constructor(o: {
    env: SessionEnv<SseHooks>;
    socket: Socket;
    stream: SSEStream;
    framing: "chunked" | "close";
    buffered: Uint8Array;
    generation: number;
    listener: string | null;
  }) {
    this.#env = o.env;
    this.#socket = o.socket;
    this.#stream = o.stream;
    this.#framing = o.framing;
    this.#buffered = o.buffered;
    this.#generation = o.generation;
    this.#listener = o.listener;
  }

  start(): void {
    this.#socket.setHandler(this);
    this.#env.track(this);
    this.#stream.attach(this);
  }

  write(text: string): void {
    if (this.#state !== "open") return;
    const bytes = encoder.encode(text);
    this.#socket.write(this.#framing === "chunked" ? encodeChunk(bytes) : bytes, true);
  }

  /** The app ended the stream: finish the response; a keep-alive connection serves HTTP again. */
  end(): void {
    if (this.#state !== "open") return;
    this.#state = "ended";
    this.#env.untrack(this);
    this.#stream.markClosed();
    if (this.#framing === "close") {
      this.#socket.drained().then(() => this.#socket.close());
      return;
    }
    this.#socket.write(LAST_CHUNK, true);
    this.#socket.drained().then(() => {
      if (!this.#socket.isOpen) return;
      if (this.#socket.isBroken) return this.#socket.close();
      const fd = this.#socket.detach();
      this.#env.adoptHttp(fd, this.#buffered, this.#listener);
    });
  }

  onReadable(): void {
    const env = this.#env;
    const n = this.#socket.read(env.readBuf, env.readLen);
    if (n > 0) {
      // A request pipelined behind the stream: kept for when the stream ends.
      const next = new Uint8Array(this.#buffered.byteLength + n);
      next.set(this.#buffered);
      next.set(env.readBuf.subarray(0, n), this.#buffered.byteLength);
      this.#buffered = next;
      if (next.byteLength > 64 * 1024) this.#socket.pauseReading();
    } else if (n === READ_EOF || n === READ_ERROR) this.#gone();
  }

  onHangup(): void {
    this.#gone();
  }

  handOff(deadline: number): Promise<DetachedSession | null> {
    const stream = this.#stream;
    return carrySession({
      kind: "sse",
      session: this,
      socket: this.#socket,
      env: this.#env,
      isOpen: () => this.#state === "open",
      flushed: () => Promise.resolve(),
      appState: () => this.#env.hooks.onSSEHandoff?.(stream),
      proto: (): SseProto => ({
        v: 1,
        url: stream.url,
        lastEventId: stream.lastEventId,
        framing: this.#framing,
        generation: this.#generation,
      }),
      buffered: () => this.#buffered,
      listener: this.#listener,
      giveUp: (reason) => {
        this.#env.log.error(`SSE stream not carried (${reason}): ending it`);
        this.end();
      },
      markDetached: () => this.#state = "detached",
    }, deadline);
  }

  closeForShutdown(): void {
    this.end();
  }

  #gone(): void {
    if (this.#state === "detached") return;
    if (this.#state === "open") {
      this.#state = "ended";
      this.#env.untrack(this);
      this.#stream.markClosed();
    }
    this.#socket.close();
  }
}

/**
 * Continues an SSE response from its handoff record and calls the app's `onSSEResume`. Takes
 * ownership of `fd`. A record that cannot be used ends the response so the client reconnects
 * (with `Last-Event-ID`).
 */
export function resumeSse(
  fd: number,
  record: ConnectionRecord,
  env: SessionEnv<SseHooks>,
): void {
  const p = record.proto as Partial<SseProto> | null;
  const socket = new Socket(env.loop, fd, { onReadable() {}, onHangup() {} });
  if (
    p === null || typeof p !== "object" || p.v !== 1 || typeof p.url !== "string" ||
    typeof p.lastEventId !== "string" || (p.framing !== "chunked" && p.framing !== "close")
  ) {
    env.log.error(`cannot resume SSE stream on fd ${fd}: unknown record shape: ending it`);
    socket.close();
    return;
  }
  const stream = new SSEStream(p.url, p.lastEventId);
  const session = new SseSession({
    env,
    socket,
    stream,
    framing: p.framing,
    buffered: record.buffered,
    generation: p.generation ?? env.generation,
    listener: record.listener,
  });
  session.start();
  try {
    env.hooks.onSSEResume?.(stream, record.app, {
      url: p.url,
      protocol: "",
      lastEventId: p.lastEventId,
      generation: p.generation ?? env.generation,
    });
  } catch (err) {
    env.log.error(`onSSEResume failed: ${describeError(err)}: ending the stream`);
    stream.close();
  }
}
