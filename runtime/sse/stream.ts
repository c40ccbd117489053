/**
 * @module
 * The app's side of Server-Sent Events (WHATWG HTML §9.2): `sse(req)` returns a stream the app
 * sends events on and a response to return; `formatEvent` writes one event. The engine writes
 * the response head and hands the connection to an `SseSession` (session.ts), with the stream
 * as its source. Owns no socket.
 */
import {
  recordRequest,
  registerSession,
  type RequestRecord,
  type SessionEnv,
} from "../sessions/mod.ts";
import type { Socket } from "../io/mod.ts";
import type { TakeoverFraming } from "../http/mod.ts";
import { type SseHooks, type SseOutput, SseSession, type SseSource } from "./session.ts";

const encoder = new TextEncoder();

/** One event. `data` may span lines; `id` becomes the stream's `lastEventId`. */
export interface SSEEvent {
  data: string;
  event?: string;
  id?: string;
  /** Reconnection time the client should use, ms. */
  retry?: number;
}

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

/** The app's side of an SSE response. */
export class SSEStream {
  readonly url: string;
  #lastEventId: string;
  #transport: SseOutput | null = null;
  #queued: string[] = [];
  #queuedBytes = 0;
  #isClosed = false;
  #isEndPending = false;
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

  /**
   * Bytes sent on this stream that the client has not taken yet, as WebSocket's
   * `bufferedAmount`: an app that sends faster than a client reads can watch it. Past a hard
   * cap (16 MiB) the client is deemed gone: the stream closes.
   */
  get bufferedAmount(): number {
    return this.#transport?.bufferedAmount ?? this.#queuedBytes;
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
    if (this.#transport) return this.#transport.end();
    // Not attached yet (closed inside the handler): what was sent goes out, then the end.
    this.#isEndPending = true;
    this.#markClosed();
  }

  #emit(text: string): void {
    if (this.#transport) this.#transport.write(text);
    else {
      this.#queued.push(text);
      this.#queuedBytes += encoder.encode(text).byteLength;
    }
  }

  /** @internal The session took the connection: flush what was sent before. */
  attach(transport: SseOutput): void {
    this.#transport = transport;
    for (const t of this.#queued) transport.write(t);
    this.#queued = [];
    this.#queuedBytes = 0;
    if (this.#isEndPending) transport.end();
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
  const request = recordRequest(req);
  registerSession(response, {
    kind: "sse",
    head: () => null,
    // Method parameters are bivariant: the server's env carries every kind's hooks.
    attach(socket, leftover, framing, env: SessionEnv<SseHooks>, listener) {
      startStreamSession(stream, { env, socket, framing, buffered: leftover, listener, request });
    },
    abandon() {
      stream.markClosed();
    },
  });
  return { stream, response };
}

/** Runs `stream` as the source of an SSE response on a connection (new, or carried over). */
export function startStreamSession(
  stream: SSEStream,
  o: {
    env: SessionEnv<SseHooks>;
    socket: Socket;
    framing: TakeoverFraming;
    buffered: Uint8Array;
    listener: string | null;
    request: RequestRecord | null;
    generation?: number;
  },
): void {
  new SseSession({
    ...o,
    source: new StreamSource(stream),
    generation: o.generation ?? o.env.generation,
  }).start();
}

/** An `sse()` stream as a session's source: its events are whole, so any moment is a boundary. */
class StreamSource implements SseSource {
  readonly kind = "sse";
  readonly #stream: SSEStream;

  constructor(stream: SSEStream) {
    this.#stream = stream;
  }

  get url(): string {
    return this.#stream.url;
  }

  get lastEventId(): string {
    return this.#stream.lastEventId;
  }

  start(out: SseOutput): void {
    this.#stream.attach(out);
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  handoffState(hooks: SseHooks): unknown {
    return hooks.onSSEHandoff?.(this.#stream);
  }

  release(): void {
    this.#stream.markClosed();
  }
}
