/**
 * @module
 * Server-Sent Events (WHATWG HTML §9.2): `sse(req)` returns a stream the app sends events on
 * and a response to return. The engine writes the response head and hands the connection to
 * an `SseSession`, which writes each event as one chunk, notices the client leaving, and at a
 * handoff gives up the fd with the last event id so the next process continues the same
 * response. When the app ends the stream on a keep-alive connection, the connection goes back
 * to serving HTTP requests.
 */
import { READ_EOF, READ_ERROR, Socket, type SocketHandler } from "./io/socket.ts";
import { type CarriedSession, registerTakeover, type SessionEnv } from "./sessions.ts";
import { checkPlainData, type ConnectionRecord } from "./handoff/state.ts";
import { rawLocalAddr, rawPeerAddr } from "./sys/mod.ts";
import { describeError } from "./errors.ts";
import { encodeChunk, LAST_CHUNK } from "./http/writer.ts";

/** One event. `data` may span lines; `id` becomes the stream's `lastEventId`. */
export interface SSEEvent {
  data: string;
  event?: string;
  id?: string;
  /** Reconnection time the client should use, ms. */
  retry?: number;
}

const encoder = new TextEncoder();

/** Formats one event (WHATWG HTML §9.2.5). Throws TypeError for an id or name with a newline. */
export function formatEvent(ev: SSEEvent): string {
  let s = "";
  if (ev.event !== undefined) {
    if (/[\r\n]/.test(ev.event)) throw new TypeError("SSE event name contains a newline");
    s += `event: ${ev.event}\n`;
  }
  if (ev.id !== undefined) {
    if (/[\r\n\0]/.test(ev.id)) throw new TypeError("SSE event id contains a newline or NUL");
    s += `id: ${ev.id}\n`;
  }
  if (ev.retry !== undefined) s += `retry: ${Math.max(0, Math.floor(ev.retry))}\n`;
  for (const line of ev.data.split(/\r\n|\r|\n/)) s += `data: ${line}\n`;
  return s + "\n";
}

/** What an SSE stream needs from the session behind it. */
interface SseTransport {
  write(text: string): void;
  end(): void;
}

/** The app's side of an SSE response. */
export class SSEStream {
  readonly url: string;
  #lastEventId: string;
  #transport: SseTransport | null = null;
  #queued: string[] = [];
  #isClosed = false;
  #closed = Promise.withResolvers<void>();
  /** Called once when the stream ends (client gone, `close()`, server stop). */
  onclose: (() => void) | null = null;

  constructor(url: string, lastEventId: string) {
    this.url = url;
    this.#lastEventId = lastEventId;
  }

  /** The id of the last event sent (or the client's `Last-Event-ID` before any). */
  get lastEventId(): string {
    return this.#lastEventId;
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Resolves when the stream has ended. */
  get closed(): Promise<void> {
    return this.#closed.promise;
  }

  /** Sends one event (a string is sent as `data`). Ignored once closed. */
  send(ev: SSEEvent | string): void {
    if (this.#isClosed) return;
    const e = typeof ev === "string" ? { data: ev } : ev;
    const text = formatEvent(e);
    if (e.id !== undefined) this.#lastEventId = e.id;
    this.#emit(text);
  }

  /** Sends a comment line (a keep-alive that clients ignore). */
  comment(text: string): void {
    if (!this.#isClosed) this.#emit(`: ${text.replace(/[\r\n]+/g, " ")}\n\n`);
  }

  /** Ends the stream. */
  close(): void {
    if (this.#isClosed) return;
    if (this.#transport) this.#transport.end();
    else this.#markClosed();
  }

  #emit(text: string): void {
    if (this.#transport) this.#transport.write(text);
    else this.#queued.push(text);
  }

  /** @internal The session took the connection: flush what was sent before. */
  attach(transport: SseTransport): void {
    this.#transport = transport;
    for (const t of this.#queued) transport.write(t);
    this.#queued = [];
  }

  /** @internal */
  markClosed(): void {
    this.#markClosed();
  }

  #markClosed(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#closed.resolve();
    try {
      this.onclose?.();
    } catch {
      // An app callback failing must not break the session teardown.
    }
  }
}

/** Options for {@linkcode sse}. */
export interface SSEInit {
  headers?: HeadersInit;
}

/** Starts an SSE response: return `response` from the handler, send on `stream`. */
export function sse(req: Request, init: SSEInit = {}): { stream: SSEStream; response: Response } {
  const stream = new SSEStream(req.url, req.headers.get("last-event-id") ?? "");
  const headers = new Headers(init.headers);
  if (!headers.has("content-type")) headers.set("content-type", "text/event-stream; charset=utf-8");
  if (!headers.has("cache-control")) headers.set("cache-control", "no-cache");
  const response = new Response(null, { status: 200, headers });
  registerTakeover(response, {
    kind: "sse",
    head: () => null,
    attach(socket, leftover, env, framing) {
      new SseSession({
        env,
        socket,
        stream,
        framing,
        buffered: leftover,
        generation: env.generation,
      })
        .start();
    },
    abandon() {
      stream.markClosed();
    },
  });
  return { stream, response };
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
class SseSession implements SocketHandler, SseTransport, CarriedSession {
  readonly kind = "sse";
  readonly #env: SessionEnv;
  readonly #socket: Socket;
  readonly #stream: SSEStream;
  readonly #framing: "chunked" | "close";
  readonly #generation: number;
  #buffered: Uint8Array;
  #state: SseState = "open";

  constructor(o: {
    env: SessionEnv;
    socket: Socket;
    stream: SSEStream;
    framing: "chunked" | "close";
    buffered: Uint8Array;
    generation: number;
  }) {
    this.#env = o.env;
    this.#socket = o.socket;
    this.#stream = o.stream;
    this.#framing = o.framing;
    this.#buffered = o.buffered;
    this.#generation = o.generation;
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
      this.#env.adoptHttp(fd, this.#buffered);
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

  async handOff(deadline: number): Promise<{ fd: number; record: ConnectionRecord } | null> {
    if (this.#state !== "open") return null;
    this.#socket.pauseReading();
    await Promise.race([
      this.#socket.drained(),
      new Promise((r) => setTimeout(r, Math.max(0, deadline - performance.now()))),
    ]);
    if (this.#state !== "open") return null;
    let app: unknown = null;
    try {
      if (this.#socket.bufferedAmount > 0) throw new Error("events not flushed in time");
      app = checkPlainData(this.#env.hooks.onSSEHandoff?.(this.#stream) ?? null, "state");
    } catch (err) {
      this.#env.log.error(`SSE stream not carried (${describeError(err)}): ending it`);
      this.end();
      return null;
    }
    const proto: SseProto = {
      v: 1,
      url: this.#stream.url,
      lastEventId: this.#stream.lastEventId,
      framing: this.#framing,
      generation: this.#generation,
    };
    const fd = this.#socket.fd;
    const record: ConnectionRecord = {
      kind: "sse",
      buffered: this.#buffered,
      local: rawLocalAddr(fd),
      peer: rawPeerAddr(fd),
      proto,
      app,
      listener: null,
    };
    this.#state = "detached";
    this.#socket.detach();
    this.#env.untrack(this);
    return { fd, record };
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
export function resumeSse(fd: number, record: ConnectionRecord, env: SessionEnv): void {
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
