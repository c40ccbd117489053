/**
 * @module
 * One request/response exchange on a connection: builds the `Request` (with a streaming body
 * and an abort signal), runs the handler, and writes its `Response` — in one send with
 * Content-Length when the body is a single chunk, chunked (or close-delimited for HTTP/1.0)
 * with backpressure when it streams. Owns no fd: it writes through its host's socket and
 * reports the end of the exchange to its host, which decides what the connection does next.
 */
import type { Socket } from "../io/mod.ts";
import type { Logger } from "../log.ts";
import { describeError } from "../errors.ts";
import type { RequestHead } from "./parser.ts";
import type { FetchHandler, RemoteAddr, ServeHandlerInfo } from "./types.ts";
import { type BodyHost, RequestBody } from "./request_body.ts";
import type { HttpLimits } from "./limits.ts";
import {
  bodyBytes,
  contentTypeOnly,
  encodeChunk,
  encodeMessage,
  errorResponseBytes,
  type Framing,
  LAST_CHUNK,
  type ResponseHeadOptions,
  responseHeadString,
  scanHeaders,
  toBytes,
} from "./writer.ts";
import {
  attachSignal,
  canAttachSignal,
  canKeepMethod,
  fastHead,
  fixedBody,
  keepMethod,
} from "./deno_fast.ts";
import {
  type EventStreamOffer,
  isEventStream,
  rememberRequestHead,
  type Takeover,
  type TakeoverFraming,
} from "./takeover.ts";

/** What an exchange needs from its connection. */
export interface ExchangeHost extends BodyHost {
  readonly socket: Socket;
  readonly remoteAddr: RemoteAddr;
  readonly listenerName: string;
  /** Host to use in the URL when the request has none (HTTP/1.0). */
  readonly defaultHost: string;
  readonly log: Logger;
  readonly limits: HttpLimits;
  /** The connection will close after this exchange whatever the request says (graceful stop). */
  readonly mustClose: boolean;
  onResponseStart(): void;
  /** The response is fully queued; `isClose` says the connection must close. */
  onExchangeDone(isClose: boolean): void;
  /** The response could not be completed: the connection must be torn down. */
  onExchangeFailed(): void;
  /**
   * The takeover `response` starts, claimed once (see takeover.ts); else undefined.
   * `eventStream` is given for a streaming `text/event-stream` body.
   */
  takeoverOf(response: Response, eventStream?: EventStreamOffer): Takeover | undefined;
  /** The response starts a session: write `head`, then hand the socket to `takeover`. */
  onTakeover(takeover: Takeover, head: Uint8Array, framing: TakeoverFraming): void;
}

/** Write-queue size past which a streaming response waits for the socket to drain. */
const WRITE_HWM = 64 * 1024;
const NOT_YET: unique symbol = Symbol("not yet");
type ReadResult = ReadableStreamReadResult<Uint8Array>;
const FORBIDDEN_METHODS = new Set(["CONNECT", "TRACE", "TRACK"]);
/** The methods `new Request()` upper-cases (Fetch standard, "normalize a method"). */
const NORMALIZED_METHODS = new Set(["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"]);

/**
 * Whether `new Request()` would not keep `method` as sent: a case variant of a normalized
 * method ("get" is not GET: RFC 9110 §9.1, methods are case-sensitive tokens), or TRACE and
 * TRACK, which it refuses. Deno.serve gives all of them to the handler unchanged, as we do.
 */
function isAlteredByRequest(method: string): boolean {
  if (method === "GET" || method === "POST") return false;
  const upper = method.toUpperCase();
  return upper === "TRACE" || upper === "TRACK" ||
    (upper !== method && NORMALIZED_METHODS.has(upper));
}

class HandlerInfo implements ServeHandlerInfo {
  readonly #host: ExchangeHost;
  #completed: PromiseWithResolvers<void> | null = null;
  #isSettled = false;
  constructor(host: ExchangeHost) {
    this.#host = host;
  }
  get remoteAddr(): RemoteAddr {
    return this.#host.remoteAddr;
  }
  get listener(): string {
    return this.#host.listenerName;
  }
  /** Created on first use: most handlers never look. Always resolves (never rejects). */
  get completed(): Promise<void> {
    if (this.#completed === null) {
      this.#completed = Promise.withResolvers<void>();
      if (this.#isSettled) this.#completed.resolve();
    }
    return this.#completed.promise;
  }
  settle(): void {
    this.#isSettled = true;
    this.#completed?.resolve();
  }
}

/** One request and its response. */
export class Exchange {
  readonly head: RequestHead;
  readonly body: RequestBody | null;
  readonly #host: ExchangeHost;
  readonly #abort = new AbortController();
  readonly #info: HandlerInfo;
  #request: Request | null = null;
  #isResponseStarted = false;
  #isFinished = false;
  /** The Request is built with a stand-in method, then given the method as sent. */
  readonly #isMethodKept: boolean;

  constructor(host: ExchangeHost, head: RequestHead) {
    this.head = head;
    this.#host = host;
    this.#info = new HandlerInfo(host);
    const isAltered = isAlteredByRequest(head.method);
    this.#isMethodKept = isAltered && canKeepMethod;
    const method = isAltered && !canKeepMethod ? head.method.toUpperCase() : head.method;
    const hasBody = head.isChunked || head.contentLength > 0;
    this.body = hasBody
      ? new RequestBody(host, {
        contentLength: head.contentLength,
        isChunked: head.isChunked,
        // A Request for GET or HEAD cannot have a body. Content in them has no defined
        // meaning (RFC 9110 §9.3.1, §9.3.2): it is read (the framing holds) and dropped, and
        // `req.body` is null, as Deno.serve does for a GET with Content-Length.
        hasStream: method !== "GET" && method !== "HEAD",
        limits: host.limits,
      })
      : null;
  }

  get isBodyDone(): boolean {
    return this.body === null || this.body.isDone;
  }

  get isResponseStarted(): boolean {
    return this.#isResponseStarted;
  }

  /** Builds the Request and runs the handler; the response is written when it settles. */
  run(handler: FetchHandler): void {
    let request: Request;
    try {
      request = this.#buildRequest();
    } catch (err) {
      const h = this.head;
      const status = FORBIDDEN_METHODS.has(h.method.toUpperCase()) ? 501 : 400;
      this.#host.log.debug(`refused ${h.method} ${h.target}: ${describeError(err)}`);
      this.#writeError(status);
      return;
    }
    this.#request = request;
    let result: Response | Promise<Response>;
    try {
      result = handler(request, this.#info);
    } catch (err) {
      this.#handlerFailed(err);
      return;
    }
    if (result instanceof Response) {
      this.#respond(result);
    } else {
      Promise.resolve(result).then((res) => this.#respond(res), (err) => this.#handlerFailed(err));
    }
  }

  /** The connection is gone: abort `request.signal`, error the body, write nothing more. */
  abort(reason: unknown): void {
    this.signalClientGone(reason);
    this.#finishQuietly();
  }

  /** The client sent FIN: abort `request.signal` but still write the response. */
  signalClientGone(reason: unknown): void {
    this.body?.fail(reason);
    if (!this.#abort.signal.aborted) this.#abort.abort(reason);
  }

  /**
   * Answers with an error status in place of the handler's response, if nothing has been
   * written yet (a timeout, a bad body). Returns false when the response already started.
   */
  answerError(status: number): boolean {
    if (this.#isResponseStarted) return false;
    this.#writeError(status, true);
    return true;
  }

  #buildRequest(): Request {
    const h = this.head;
    let url: string;
    if (h.target.charCodeAt(0) === 0x2f) {
      url = `http://${h.host || this.#host.defaultHost}${h.target}`;
    } else if (/^https?:\/\//i.test(h.target)) url = h.target; // absolute-form, RFC 9112 §3.2.2
    else if (h.target === "*" && h.method === "OPTIONS") {
      url = `http://${h.host || this.#host.defaultHost}/*`;
    } else throw new TypeError(`unsupported request-target form: ${h.target.slice(0, 64)}`);
    const stream = this.body?.stream ?? null;
    const init: RequestInit = {
      method: this.#isMethodKept ? "POST" : h.method,
      headers: h.headers,
    };
    if (stream !== null) init.body = stream;
    if (!canAttachSignal) init.signal = this.#abort.signal;
    const req = new Request(url, init);
    if (this.#isMethodKept) keepMethod(req, h.method);
    if (canAttachSignal) attachSignal(req, this.#abort.signal);
    if (h.upgrade !== null) rememberRequestHead(req, h);
    return req;
  }

  #handlerFailed(err: unknown): void {
    const h = this.head;
    this.#host.log.error(`handler failed for ${h.method} ${h.target}: ${describeError(err)}`);
    if (err instanceof Error && err.stack) this.#host.log.debug(err.stack);
    this.#writeError(500);
  }

  /** Writes a plain error response; `isProtocolError` (bad framing, timeout) always closes. */
  #writeError(status: number, isProtocolError = false): void {
    if (this.#isFinished || !this.#host.socket.isOpen) return this.#finishQuietly();
    this.#start();
    const isClose = isProtocolError || this.#mustClose(false);
    const bytes = errorResponseBytes(status, isClose);
    this.#host.socket.write(bytes, true);
    this.#finish(isClose);
  }

  #mustClose(isUserClose: boolean): boolean {
    return !this.head.isKeepAlive || this.#host.mustClose || !this.isBodyDone || isUserClose;
  }

  #start(): void {
    this.#isResponseStarted = true;
    this.#host.onResponseStart();
  }

  #finish(isClose: boolean): void {
    this.#isFinished = true;
    this.#info.settle();
    this.#host.onExchangeDone(isClose);
  }

  #finishQuietly(): void {
    if (this.#isFinished) return;
    this.#isFinished = true;
    this.#info.settle();
  }

  async #respond(res: Response): Promise<void> {
    if (!(res instanceof Response)) {
      return this.#handlerFailed(new TypeError(`handler returned ${typeof res}, not a Response`));
    }
    const socket = this.#host.socket;
    const takeover = this.#host.takeoverOf(res);
    if (this.#isFinished || !socket.isOpen) {
      takeover?.abandon();
      res.body?.cancel().catch(() => {});
      return this.#finishQuietly();
    }
    if (takeover !== undefined) return this.#takeOver(takeover, res);
    const h = this.head;
    const status = res.status;
    // Read Deno's fixed body before touching headers or body (see deno_fast.ts).
    const fixed = fixedBody(res);
    const fast = fastHead(res);
    const scan = fast !== null ? contentTypeOnly(fast.contentType) : scanHeaders(res.headers);
    const hasNoBody = status === 204 || status === 304 || (status >= 100 && status < 200);
    const isClose = this.#mustClose(scan.isClose);
    const head: Omit<ResponseHeadOptions, "framing"> = {
      status,
      statusText: res.statusText,
      scan,
      isClose,
      isKeepAlive10: h.minor === 0 && !isClose,
    };
    if (
      h.method === "GET" && !hasNoBody && fixed === undefined && status === 200 &&
      scan.contentLength < 0 && this.isBodyDone
    ) {
      // An event stream (what EventSource asks for) may go on as a session that a handoff
      // carries (takeover.ts); a request with a body could not be replayed.
      const type = fast !== null ? fast.contentType : res.headers.get("content-type");
      const offer: EventStreamOffer = {
        request: this.#request!,
        abortRequest: (reason) => this.signalClientGone(reason),
      };
      const stream = isEventStream(type) ? this.#host.takeoverOf(res, offer) : undefined;
      if (stream !== undefined) return this.#takeOver(stream, res);
    }
    this.#start();
    if (hasNoBody || fixed !== undefined) {
      if (hasNoBody && fixed === undefined) res.body?.cancel().catch(() => {});
      const bytes = hasNoBody || fixed == null ? null : bodyBytes(fixed);
      const framing: Framing = hasNoBody
        ? { kind: "none" }
        : { kind: "length", length: bytes?.byteLength ?? 0 };
      const text = responseHeadString({ ...head, framing });
      socket.write(encodeMessage(text, h.method === "HEAD" ? null : bytes));
      return this.#finish(isClose);
    }
    await this.#respondStream(res.body!, head, scan.contentLength);
  }

  /** A WebSocket or SSE response: write its head and give the connection to the session. */
  #takeOver(takeover: Takeover, res: Response): void {
    const h = this.head;
    if (!this.isBodyDone) {
      takeover.abandon();
      return this.#handlerFailed(new Error("a session response before the request body ended"));
    }
    const framing: TakeoverFraming = h.minor === 0 ? "close" : "chunked";
    const head = takeover.head(h) ?? responseHeadString({
      status: res.status,
      statusText: res.statusText,
      scan: scanHeaders(res.headers),
      framing: { kind: framing },
      isClose: framing === "close",
    });
    this.#start();
    this.#isFinished = true;
    this.#info.settle();
    this.#host.onTakeover(takeover, encodeMessage(head, null), framing);
  }

  /** Writes a body we must read as a stream: chunked, fixed-length or close-delimited. */
  async #respondStream(
    body: ReadableStream<Uint8Array>,
    head: Omit<ResponseHeadOptions, "framing">,
    userLength: number,
  ): Promise<void> {
    const socket = this.#host.socket;
    const h = this.head;
    const isHead = h.method === "HEAD";
    let isClose = head.isClose;
    const reader = body.getReader();
    try {
      const first = await reader.read();
      // A second read that is already settled tells a fixed body from a live stream.
      let pending: Promise<ReadResult> | null = null;
      let second: ReadResult | null = null;
      if (!first.done) {
        pending = reader.read();
        const raced = await Promise.race<ReadResult | typeof NOT_YET>([pending, NOT_YET]);
        if (raced !== NOT_YET) {
          second = raced;
          pending = null;
        }
      }
      if (first.done || second?.done) {
        // The whole body is known: one send with Content-Length (RFC 9112 §6.2).
        const bytes = first.done ? null : toBytes(first.value);
        const text = responseHeadString({
          ...head,
          framing: { kind: "length", length: bytes?.byteLength ?? 0 },
        });
        socket.write(encodeMessage(text, isHead ? null : bytes));
        return this.#finish(isClose);
      }
      // A stream: chunked for HTTP/1.1, close-delimited for HTTP/1.0 (RFC 9112 §6.3 (8)).
      let framing: Framing;
      if (userLength >= 0) framing = { kind: "length", length: userLength };
      else if (isHead) framing = { kind: "none" };
      else if (h.minor === 0) framing = { kind: "close" };
      else framing = { kind: "chunked" };
      if (framing.kind === "close") isClose = true;
      const text = responseHeadString({
        ...head,
        framing,
        isClose,
        isKeepAlive10: head.isKeepAlive10 && !isClose,
      });
      if (isHead) {
        reader.cancel().catch(() => {});
        socket.write(encodeMessage(text, null));
        return this.#finish(isClose);
      }
      const isChunked = framing.kind === "chunked";
      const firstBytes = toBytes(first.value!);
      socket.write(encodeMessage(text, isChunked ? encodeChunk(firstBytes) : firstBytes));
      let sent = firstBytes.byteLength;
      let ready = second;
      for (;;) {
        const r = ready ?? await pending!;
        ready = null;
        if (r.done) break;
        const bytes = toBytes(r.value);
        if (bytes.byteLength > 0) {
          if (!socket.write(isChunked ? encodeChunk(bytes) : bytes, isChunked)) {
            throw new Error("peer went away");
          }
          sent += bytes.byteLength;
        }
        if (socket.bufferedAmount > WRITE_HWM) await socket.drained();
        if (!socket.isOpen || socket.isBroken) throw new Error("peer went away");
        pending = reader.read();
      }
      if (framing.kind === "length" && sent !== framing.length) {
        throw new Error(`body was ${sent} bytes, Content-Length said ${framing.length}`);
      }
      if (isChunked) socket.write(LAST_CHUNK, true);
      this.#finish(isClose);
    } catch (err) {
      reader.cancel(err).catch(() => {});
      if (socket.isOpen && !socket.isBroken) {
        this.#host.log.error(
          `response body failed for ${h.method} ${h.target}: ${describeError(err)}`,
        );
      }
      this.#finishQuietly();
      this.#host.onExchangeFailed();
    }
  }
}
