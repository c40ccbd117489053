/**
 * @module
 * One request/response exchange on a connection: makes the handler's `Request` (request.ts:
 * built only as far as the handler reads it), runs the handler, and writes its `Response` —
 * in one send when Deno holds its body whole (a string, bytes, none), streamed otherwise
 * (response_stream.ts). A synchronous handler costs no promise and no closure. Owns no fd: it
 * writes through its host's socket and reports the end of the exchange to its host, which
 * decides what the connection does next.
 */
import type { Socket } from "../io/mod.ts";
import type { Logger } from "../log.ts";
import { describeError } from "../errors.ts";
import type { RequestHead } from "./head.ts";
import type { FetchHandler, RemoteAddr, ServeHandlerInfo } from "./types.ts";
import { type BodyHost, RequestBody } from "./request_body.ts";
import type { HttpLimits } from "./limits.ts";
import {
  bodyBytes,
  contentTypeOnly,
  encodeMessage,
  errorResponseBytes,
  HEAD_ONLY,
  NO_BODY,
  RESPONSE_OUT,
  type ResponseHeadOptions,
  responseHeadString,
  scanHeaders,
  WITH_BODY,
  writeSimpleResponse,
} from "./writer.ts";
import { fastContentType, fixedBody } from "./deno_fast.ts";
import { EngineRequest, requestMethod, targetStatus } from "./request.ts";
import { writeStreamedResponse } from "./response_stream.ts";
import {
  type EventStreamOffer,
  isEventStream,
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
  /** Wall-clock time in ms, coarse (for the Date field). */
  readonly wallClockMs: number;
  /**
   * An exchange starts (+1) or stops (-1) waiting on something outside its turn — an async
   * handler, a streamed body: what it waits for may be in Deno's event loop (io/loop.ts spins).
   */
  notePending(delta: 1 | -1): void;
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
  /** The handler's Request and info: made only for a handler that takes arguments. */
  #request: EngineRequest | null = null;
  #info: HandlerInfo | null = null;
  #isResponseStarted = false;
  #isFinished = false;
  /** Counted by the host as pending (see ExchangeHost.notePending). */
  #isPending = false;

  constructor(host: ExchangeHost, head: RequestHead) {
    this.head = head;
    this.#host = host;
    const method = requestMethod(head);
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

  /**
   * Runs the handler; the response is written when it settles (at once when it returns a
   * Response). A handler that takes no argument gets no Request made, as with Deno.serve.
   */
  run(handler: FetchHandler): void {
    const h = this.head;
    const refusal = targetStatus(h);
    if (refusal !== 0) {
      this.#host.log.debug(`refused ${h.method} ${h.target.slice(0, 64)}: ${refusal}`);
      return this.#writeError(refusal);
    }
    let request: Request | null = null;
    if (handler.length !== 0) {
      try {
        this.#info = new HandlerInfo(this.#host);
        this.#request = new EngineRequest(h, this.#host.defaultHost, this.body?.stream ?? null);
        request = this.#request.request;
      } catch (err) {
        // Only the public path (deno_fast.ts off) builds in full, and can refuse.
        this.#host.log.debug(`refused ${h.method} ${h.target}: ${describeError(err)}`);
        return this.#writeError(400);
      }
    }
    let result: Response | Promise<Response>;
    try {
      result = request === null
        ? (handler as () => Response | Promise<Response>)()
        : handler(request, this.#info!);
    } catch (err) {
      this.#handlerFailed(err);
      return this.#freezeHead(request);
    }
    if (result instanceof Response) this.#respond(result);
    else this.#respondWhenSettled(result);
    this.#freezeHead(request);
  }

  #respondWhenSettled(result: Promise<Response>): void {
    Promise.resolve(result).then((res) => this.#respond(res), (err) => this.#handlerFailed(err));
  }

  /**
   * The head's strings are cut from the connection's read buffer, which its next read reuses:
   * what outlives this turn — the app's Request, an exchange still running — gets a copy now.
   */
  #freezeHead(request: Request | null): void {
    if (request !== null || !this.#isFinished) this.head.freeze();
    if (!this.#isFinished && !this.#isPending) {
      this.#isPending = true;
      this.#host.notePending(1);
    }
  }

  /** The exchange is over: whatever it waited on no longer counts. */
  #markFinished(): void {
    this.#isFinished = true;
    if (this.#isPending) {
      this.#isPending = false;
      this.#host.notePending(-1);
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
    this.#request?.cancel(reason);
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
    this.#markFinished();
    this.#info?.settle();
    this.#host.onExchangeDone(isClose);
  }

  #finishQuietly(): void {
    if (this.#isFinished) return;
    this.#markFinished();
    this.#info?.settle();
  }

  #respond(res: Response): void {
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
    const hasNoBody = status === 204 || status === 304 || (status >= 100 && status < 200);
    // Read Deno's fixed body and its only header before touching headers or body (deno_fast.ts).
    const fixed = fixedBody(res);
    const contentType = fastContentType(res);
    if (fixed !== undefined && contentType !== undefined) {
      // The common answer: one buffer, one send, no header object read (writer.ts).
      const isClose = this.#mustClose(false);
      const length = writeSimpleResponse(
        status,
        res.statusText,
        contentType,
        fixed,
        hasNoBody ? NO_BODY : h.method === "HEAD" ? HEAD_ONLY : WITH_BODY,
        isClose,
        h.minor === 0 && !isClose,
        this.#host.wallClockMs,
      );
      if (length >= 0) {
        this.#start();
        socket.write(RESPONSE_OUT, false, length);
        return this.#finish(isClose);
      }
    }
    const scan = contentType !== undefined
      ? contentTypeOnly(contentType)
      : scanHeaders(res.headers);
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
      const type = contentType !== undefined ? contentType : res.headers.get("content-type");
      if (isEventStream(type)) {
        const stream = this.#host.takeoverOf(res, this.#eventStreamOffer());
        if (stream !== undefined) return this.#takeOver(stream, res);
      }
    }
    this.#start();
    if (hasNoBody || fixed !== undefined) {
      if (hasNoBody && fixed === undefined) res.body?.cancel().catch(() => {});
      const bytes = hasNoBody || fixed === null || fixed === undefined ? null : bodyBytes(fixed);
      const text = responseHeadString({
        ...head,
        framing: hasNoBody ? { kind: "none" } : { kind: "length", length: bytes?.byteLength ?? 0 },
      });
      socket.write(encodeMessage(text, h.method === "HEAD" ? null : bytes));
      return this.#finish(isClose);
    }
    writeStreamedResponse(socket, res.body!, {
      head,
      userLength: scan.contentLength,
      isHead: h.method === "HEAD",
      minor: h.minor,
      describe: () => `${h.method} ${h.target}`,
      log: this.#host.log,
    }).then(
      (isCloseAfter) => this.#finish(isCloseAfter),
      () => {
        this.#finishQuietly();
        this.#host.onExchangeFailed();
      },
    );
  }

  /** What a session carrying an event stream needs of its request (made now if it was not). */
  #eventStreamOffer(): EventStreamOffer {
    this.head.freeze(); // the session keeps the Request past this turn
    this.#request ??= new EngineRequest(
      this.head,
      this.#host.defaultHost,
      this.body?.stream ?? null,
    );
    return {
      request: this.#request.request,
      abortRequest: (reason) => this.signalClientGone(reason),
    };
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
    this.#markFinished();
    this.#info?.settle();
    this.#host.onTakeover(takeover, encodeMessage(head, null), framing);
  }
}
