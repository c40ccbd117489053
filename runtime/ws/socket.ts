/**
 * @module
 * The WebSocket object an app holds, shaped like the WHATWG `WebSocket` (as
 * `Deno.upgradeWebSocket` returns it): `readyState`, `binaryType`, `bufferedAmount`,
 * `protocol`, `send`, `close`, `on*` handlers and events. It owns no socket: frames go through
 * its transport (the session), which reports back through the `WS_INTERNAL` methods.
 */
import { encodeBinary, encodeText } from "./encoder.ts";
import { MAX_CLOSE_REASON_BYTES } from "./constants.ts";

/** What the socket needs from the session that carries it. */
export interface WsTransport {
  send(frame: Uint8Array): void;
  readonly bufferedAmount: number;
  close(code: number | undefined, reason: string): void;
}

/** Session-only access to a socket. */
export const WS_INTERNAL = Symbol("apprun.ws.internal");

/** The methods a session calls on its socket. */
export interface WsInternal {
  open(transport: WsTransport, options: { isResumed: boolean }): void;
  message(data: string | Uint8Array): void;
  closing(): void;
  closed(code: number, reason: string, wasClean: boolean): void;
  error(message: string): void;
  /** Resolves when Blob sends queued before now are written. */
  flushed(): Promise<void>;
}

type Handler<E extends Event = Event> = ((this: ServerWebSocket, ev: E) => unknown) | null;

/** A server-side WebSocket. */
export class ServerWebSocket extends EventTarget {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
  readonly CONNECTING = 0;
  readonly OPEN = 1;
  readonly CLOSING = 2;
  readonly CLOSED = 3;
  readonly url: string;
  readonly protocol: string;
  readonly extensions = "";
  #readyState = 0;
  #binaryType: BinaryType = "blob";
  #transport: WsTransport | null = null;
  #pendingClose: { code: number | undefined; reason: string } | null = null;
  #blobChain: Promise<void> | null = null;
  #blobBytes = 0;
  #handlers = new Map<string, { handler: Handler; listener: EventListener }>();

  constructor(url: string, protocol: string) {
    super();
    this.url = url;
    this.protocol = protocol;
  }

  get readyState(): number {
    return this.#readyState;
  }

  get binaryType(): BinaryType {
    return this.#binaryType;
  }

  set binaryType(value: BinaryType) {
    if (value === "blob" || value === "arraybuffer") this.#binaryType = value;
  }

  get bufferedAmount(): number {
    return (this.#transport?.bufferedAmount ?? 0) + this.#blobBytes;
  }

  get onopen(): Handler<Event> {
    return this.#getHandler("open") as Handler<Event>;
  }
  set onopen(h: Handler<Event>) {
    this.#setHandler("open", h as Handler);
  }
  get onmessage(): Handler<MessageEvent> {
    return this.#getHandler("message") as Handler<MessageEvent>;
  }
  set onmessage(h: Handler<MessageEvent>) {
    this.#setHandler("message", h as Handler);
  }
  get onclose(): Handler<CloseEvent> {
    return this.#getHandler("close") as Handler<CloseEvent>;
  }
  set onclose(h: Handler<CloseEvent>) {
    this.#setHandler("close", h as Handler);
  }
  get onerror(): Handler<Event> {
    return this.#getHandler("error") as Handler<Event>;
  }
  set onerror(h: Handler<Event>) {
    this.#setHandler("error", h as Handler);
  }

  /** Sends a text or binary message (WHATWG WebSocket `send`). */
  send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
    if (this.#readyState === 0) {
      throw new DOMException("WebSocket is not open yet", "InvalidStateError");
    }
    if (this.#readyState !== 1) return; // closing or closed: dropped, as the spec says
    if (data instanceof Blob) {
      this.#blobBytes += data.size;
      const size = data.size;
      this.#blobChain = (this.#blobChain ?? Promise.resolve()).then(async () => {
        const bytes = new Uint8Array(await data.arrayBuffer());
        this.#blobBytes -= size;
        if (this.#readyState === 1) this.#transport!.send(encodeBinary(bytes));
      });
      return;
    }
    const frame = typeof data === "string" ? encodeText(data) : encodeBinary(
      ArrayBuffer.isView(data)
        ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
        : new Uint8Array(data),
    );
    if (this.#blobChain !== null) {
      this.#blobChain = this.#blobChain.then(() => {
        if (this.#readyState === 1) this.#transport!.send(frame);
      });
    } else {
      this.#transport!.send(frame);
    }
  }

  /** Starts the closing handshake (WHATWG WebSocket `close`). */
  close(code?: number, reason?: string): void {
    if (code !== undefined && code !== 1000 && (code < 3000 || code > 4999)) {
      throw new DOMException(`close code ${code} is not 1000 or 3000–4999`, "InvalidAccessError");
    }
    const text = reason ?? "";
    if (new TextEncoder().encode(text).byteLength > MAX_CLOSE_REASON_BYTES) {
      throw new DOMException("close reason longer than 123 bytes", "SyntaxError");
    }
    if (this.#readyState >= 2) return;
    this.#readyState = 2;
    if (this.#transport === null) this.#pendingClose = { code, reason: text };
    else this.#transport.close(code, text);
  }

  [WS_INTERNAL]: WsInternal = {
    open: (transport, { isResumed }) => {
      this.#transport = transport;
      if (this.#pendingClose !== null) {
        transport.close(this.#pendingClose.code, this.#pendingClose.reason);
        return;
      }
      this.#readyState = 1;
      if (!isResumed) this.dispatchEvent(new Event("open"));
    },
    message: (data) => {
      if (this.#readyState !== 1) return;
      const payload = typeof data === "string"
        ? data
        : this.#binaryType === "arraybuffer"
        ? data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)
        : new Blob([data as Uint8Array<ArrayBuffer>]);
      this.dispatchEvent(
        new MessageEvent("message", { data: payload, origin: originOf(this.url) }),
      );
    },
    closing: () => {
      if (this.#readyState < 2) this.#readyState = 2;
    },
    closed: (code, reason, wasClean) => {
      if (this.#readyState === 3) return;
      this.#readyState = 3;
      this.dispatchEvent(new CloseEvent("close", { code, reason, wasClean }));
    },
    error: (message) => {
      this.dispatchEvent(new ErrorEvent("error", { message }));
    },
    flushed: () => this.#blobChain ?? Promise.resolve(),
  };

  #getHandler(type: string): Handler {
    return this.#handlers.get(type)?.handler ?? null;
  }

  #setHandler(type: string, handler: Handler): void {
    const old = this.#handlers.get(type);
    if (old) this.removeEventListener(type, old.listener);
    if (typeof handler !== "function") {
      this.#handlers.delete(type);
      return;
    }
    const listener = (ev: Event) => handler.call(this, ev);
    this.#handlers.set(type, { handler, listener });
    this.addEventListener(type, listener);
  }
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "";
  }
}
