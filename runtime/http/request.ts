/**
 * @module
 * The `Request` a handler gets, made as Deno.serve makes its own: Deno's Request class over an
 * inner request of ours (deno_fast.ts), which answers `req.url`, `req.headers`, `req.body` and
 * `req.signal` from the parsed head only when the handler reads them. Like Deno.serve's,
 * `req.url` is the target as sent behind `http://Host` (not normalised), the headers are
 * immutable, and the method is the token as sent. Where Deno's internals do not behave as
 * checked at load, a public `new Request(url, init)` stands in, built in full. Owns nothing:
 * the exchange holds the body stream and tells the request when its client leaves.
 */
import type { RequestHead } from "./head.ts";
import {
  attachSignal,
  canAttachSignal,
  cancelUnreadSignal,
  canKeepMethod,
  canMakeLazyRequest,
  innerBodyOf,
  type InnerRequest,
  keepMethod,
  requestOf,
} from "./deno_fast.ts";
import { rememberRequestHead } from "./takeover.ts";

const ABSOLUTE_FORM = /^https?:\/\//i;
/** The methods `new Request()` upper-cases (Fetch standard, "normalize a method"). */
const NORMALIZED_METHODS = new Set(["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"]);

/**
 * Whether a Request can be made for `head`: 0, or the status that refuses it — 501 for
 * CONNECT (a tunnel needs the socket, which a handler never gets: RFC 9110 §9.3.6), 400 for a
 * request-target form other than origin, absolute and OPTIONS's asterisk (RFC 9112 §3.2).
 */
export function targetStatus(head: RequestHead): number {
  if (head.method === "CONNECT") return 501;
  if (head.targetFirstChar === 0x2f) return 0; // origin-form
  const target = head.target;
  if (ABSOLUTE_FORM.test(target)) return URL.canParse(target) ? 0 : 400;
  return target === "*" && head.method === "OPTIONS" ? 0 : 400;
}

/**
 * The method the handler's Request carries: the token as sent, or — on the public path, when
 * Deno cannot be made to keep it — as `new Request()` normalises it.
 */
export function requestMethod(head: RequestHead): string {
  if (canMakeLazyRequest || canKeepMethod || !isAlteredByRequest(head.method)) return head.method;
  return head.method.toUpperCase();
}

/** The URL of a request whose target passed {@linkcode targetStatus}. */
function urlOf(head: RequestHead, defaultHost: string): string {
  if (head.targetFirstChar === 0x2f) return `http://${head.host || defaultHost}${head.target}`;
  const target = head.target;
  if (target === "*") return `http://${head.host || defaultHost}/*`;
  return target; // absolute-form: its authority wins over Host (RFC 9112 §3.2.2)
}

/** One request's side of its `Request`: what Deno's Request asks of it, and its client's end. */
export class EngineRequest implements InnerRequest {
  readonly redirectMode = "follow" as const;
  readonly redirectCount = 0 as const;
  readonly clientRid = null;
  readonly blobUrlEntry = null;
  readonly #head: RequestHead;
  readonly #defaultHost: string;
  readonly #stream: ReadableStream<Uint8Array> | null;
  #url: string | null = null;
  #body: unknown = undefined;
  #abortSignal: (() => void) | null = null;
  #request: Request | null = null;
  /** The public path's signal (when Deno's internals are not used). */
  #controller: AbortController | null = null;
  #isCancelled = false;

  /** `stream` is the body the handler reads, or null (none, or dropped: GET, HEAD). */
  constructor(head: RequestHead, defaultHost: string, stream: ReadableStream<Uint8Array> | null) {
    this.#head = head;
    this.#defaultHost = defaultHost;
    this.#stream = stream;
  }

  /** The handler's Request (made once). Throws TypeError when the public path refuses it. */
  get request(): Request {
    return this.#request ??= this.#make();
  }

  /** The client left: `req.signal` aborts (now, or aborted when the handler first reads it). */
  cancel(reason: unknown): void {
    if (this.#isCancelled) return;
    this.#isCancelled = true;
    if (this.#abortSignal !== null) this.#abortSignal();
    else if (this.#controller !== null) this.#controller.abort(reason);
    else if (this.#request !== null && canMakeLazyRequest) cancelUnreadSignal(this.#request);
  }

  // --- InnerRequest (read by Deno's Request) ---

  get method(): string {
    return this.#head.method;
  }

  url(): string {
    return this.#url ??= urlOf(this.#head, this.#defaultHost);
  }

  currentUrl(): string {
    return this.url();
  }

  get headerList(): [string, string][] {
    return this.#head.headers;
  }

  header(name: string): string | null {
    return this.#head.get(name);
  }

  /**
   * As Deno.serve: no body for GET, HEAD and CONNECT (content sent with them is read and
   * dropped); an empty one for any other method that sent none.
   */
  get body(): unknown {
    if (this.#body !== undefined) return this.#body;
    const method = this.#head.method;
    if (this.#stream !== null) {
      this.#body = innerBodyOf(this.#stream, this.#head.contentLength);
    } else if (method === "GET" || method === "HEAD" || method === "CONNECT") {
      this.#body = null;
    } else {
      this.#body = innerBodyOf(null, 0);
    }
    return this.#body;
  }

  onCancel(abort: () => void): void {
    if (this.#isCancelled) abort();
    else this.#abortSignal = abort;
  }

  // ---

  #make(): Request {
    const head = this.#head;
    const req = canMakeLazyRequest ? requestOf(this) : this.#makePublic();
    if (head.upgrade !== null) rememberRequestHead(req, head);
    return req;
  }

  /** `new Request(url, init)`, for a Deno whose internals are not as deno_fast.ts expects. */
  #makePublic(): Request {
    const head = this.#head;
    const isKept = canKeepMethod && isAlteredByRequest(head.method);
    const init: RequestInit = {
      method: isKept ? "POST" : requestMethod(head),
      headers: head.headers,
    };
    if (this.#stream !== null) init.body = this.#stream;
    this.#controller = new AbortController();
    if (this.#isCancelled) this.#controller.abort(new Error("client gone"));
    if (!canAttachSignal) init.signal = this.#controller.signal;
    const req = new Request(this.url(), init);
    if (isKept) keepMethod(req, head.method);
    if (canAttachSignal) attachSignal(req, this.#controller.signal);
    return req;
  }
}

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
