/**
 * @module
 * Shortcuts into Deno's own Request/Response objects, the ones Deno.serve takes: a Request
 * made over an inner request of our own, as Deno.serve makes its own (URL, headers, body and
 * signal built only when the handler reads them: `new Request(url, init)` costs ~5 µs, this
 * ~0.2 µs); reading a Response body that Deno already holds in full (a string or bytes given
 * to the constructor) without creating a stream (saves ~2.5 µs a response); knowing a plain
 * 200's only header without materialising `res.headers` (~1 µs); and, for the public path,
 * giving a Request our own abort signal without the cost of `RequestInit.signal` (~2 µs a
 * request) and the method exactly as the client sent it where `new Request()` would
 * upper-case or refuse it (as Deno.serve does). All rest on internal symbols of the pinned
 * Deno; each is checked once at load against the public API and switched off, falling back
 * to the public path, if Deno ever behaves differently.
 */

function findSymbol(obj: object, description: string): symbol | undefined {
  return Object.getOwnPropertySymbols(obj).find((s) => s.description === description);
}

type Bag = Record<symbol, unknown>;

const probeResponse = new Response("probe");
const RESPONSE = findSymbol(probeResponse, "response");
const FAST_BODY = findSymbol(probeResponse, "serve fast body");
const LAZY_BODY = findSymbol(probeResponse, "lazy static body");
const probeRequest = new Request("http://probe/");
const SIGNAL_CACHE = findSymbol(probeRequest, "signalCache");
const REQUEST = findSymbol(probeRequest, "request");
const FAST_STATUS = findSymbol(probeResponse, "serve fast status");
const FAST_KIND = findSymbol(probeResponse, "serve fast header kind");
const FAST_TYPE = findSymbol(probeResponse, "serve fast content type");
const BRAND = findSymbol(probeRequest, "[[webidl.brand]]");
const HEADERS_GUARD = findSymbol(probeRequest, "headers guard");
/** Deno's InnerBody class, the body a Request holds (a stream, or bytes/a string). */
const InnerBody = REQUEST
  ? ((new Request("http://probe/", { method: "POST", body: "x" }) as unknown as Bag)[REQUEST] as {
    body?: { constructor?: unknown };
  })?.body?.constructor as (new (stream?: ReadableStream<Uint8Array>) => { length: number | null })
  : undefined;

/**
 * The Content-Type of a status-200 response whose only header it is (or null for none):
 * Deno.serve's fast path. Undefined when the response has other headers (read them).
 */
function internalContentType(res: Response): string | null | undefined {
  const bag = res as unknown as Bag;
  if (bag[FAST_STATUS!] !== 200) return undefined;
  switch (bag[FAST_KIND!]) {
    case 0:
      return null;
    case 1:
      return "text/plain;charset=UTF-8";
    case 2: {
      const type = bag[FAST_TYPE!];
      return typeof type === "string" ? type : undefined;
    }
    default:
      return undefined;
  }
}

function headShortcutWorks(): boolean {
  if (!FAST_STATUS || !FAST_KIND || !FAST_TYPE) return false;
  try {
    const touched = new Response("a");
    touched.headers.get("x");
    const set = new Response("a");
    set.headers.set("x-a", "1");
    const typed = new Response("a", { headers: { "content-type": "text/html" } });
    return internalContentType(new Response("a")) === "text/plain;charset=UTF-8" &&
      internalContentType(new Response(new Uint8Array(1))) === null &&
      internalContentType(Response.json({})) === "application/json" &&
      internalContentType(typed) === "text/html" &&
      internalContentType(new Response("a", { status: 404 })) === undefined &&
      internalContentType(new Response("a", { headers: { "x-a": "1" } })) === undefined &&
      internalContentType(touched) === undefined && internalContentType(set) === undefined;
  } catch {
    return false;
  }
}

/** The body Deno holds for `res`: bytes, a string, null (no body), or undefined (a stream). */
function internalBody(res: Response): Uint8Array | string | null | undefined {
  const inner = (res as unknown as Bag)[RESPONSE!] as { body: unknown } | undefined;
  if (inner === undefined || typeof inner !== "object") return undefined;
  const body = inner.body as { streamOrStatic?: unknown } | null;
  if (body === null) {
    const fast = (res as unknown as Bag)[FAST_BODY!] ?? (res as unknown as Bag)[LAZY_BODY!];
    if (fast === null || fast === undefined) return null;
    return typeof fast === "string" || fast instanceof Uint8Array ? fast : undefined;
  }
  const sos = body.streamOrStatic as { body?: unknown; consumed?: boolean } | undefined;
  if (sos === undefined || sos instanceof ReadableStream || sos.consumed !== false) {
    return undefined;
  }
  return typeof sos.body === "string" || sos.body instanceof Uint8Array ? sos.body : undefined;
}

function bodyShortcutWorks(): boolean {
  if (!RESPONSE || !FAST_BODY || !LAZY_BODY) return false;
  try {
    const bytes = new Uint8Array([1, 2, 3]);
    const withHeaders = new Response("b", { headers: { "x-a": "1" }, status: 201 });
    const touched = new Response("c");
    touched.headers.set("x-b", "2");
    const stream = new Response(new ReadableStream({ start: (c) => c.close() }));
    const used = new Response("d");
    void used.text();
    return internalBody(new Response("a")) === "a" &&
      String(internalBody(new Response(bytes))) === String(bytes) &&
      internalBody(new Response(null)) === null &&
      internalBody(withHeaders) === "b" &&
      internalBody(touched) === "c" &&
      internalBody(stream) === undefined &&
      internalBody(new Response(new Blob(["e"]))) === undefined &&
      internalBody(used) === undefined;
  } catch {
    return false;
  }
}

function signalShortcutWorks(): boolean {
  if (!SIGNAL_CACHE) return false;
  try {
    const req = new Request("http://probe/");
    const ac = new AbortController();
    (req as unknown as Bag)[SIGNAL_CACHE] = ac.signal;
    const copy = req.clone();
    ac.abort();
    return req.signal === ac.signal && copy.signal.aborted;
  } catch {
    return false;
  }
}

function methodShortcutWorks(): boolean {
  if (!REQUEST) return false;
  try {
    const req = new Request("http://probe/", { method: "POST", body: "x" });
    setMethod(req, "get");
    const copy = req.clone();
    const traced = new Request("http://probe/");
    setMethod(traced, "TRACE");
    return req.method === "get" && copy.method === "get" && new Request(req).method === "get" &&
      traced.method === "TRACE";
  } catch {
    return false;
  }
}

function setMethod(req: Request, method: string): void {
  ((req as unknown as Bag)[REQUEST!] as { method: string }).method = method;
}

/**
 * What Deno's Request reads of its inner request — the shape Deno.serve's own inner request
 * has (its `url()`, `header()` and `headerList` are what `req.url` and `req.headers` call).
 */
export interface InnerRequest {
  readonly method: string;
  url(): string;
  currentUrl(): string;
  /** Every field line, names lowercased (Headers iteration, `clone()`). */
  readonly headerList: [string, string][];
  /** The value of the fields called `name` (any case), ", "-joined, or null (`headers.get`). */
  header(name: string): string | null;
  /** An inner body from {@linkcode innerBody}, or null. */
  readonly body: unknown;
  /** `req.signal` was made: call `abort` when the client goes away. */
  onCancel(abort: () => void): void;
  readonly redirectMode: "follow";
  readonly redirectCount: 0;
  readonly clientRid: null;
  readonly blobUrlEntry: null;
}

function lazyRequest(inner: InnerRequest): Request {
  const req = new Request(BRAND as unknown as string);
  const bag = req as unknown as Bag;
  bag[REQUEST!] = inner;
  // As Deno.serve's requests: the handler cannot change what the client sent.
  bag[HEADERS_GUARD!] = "immutable";
  return req;
}

function lazyRequestWorks(): boolean {
  if (!BRAND || !HEADERS_GUARD || !REQUEST || !SIGNAL_CACHE || typeof InnerBody !== "function") {
    return false;
  }
  try {
    const list: [string, string][] = [["x-a", "1"], ["host", "h"], ["x-a", "2"]];
    const aborts: (() => void)[] = [];
    const inner = (body: unknown): InnerRequest => ({
      method: "get",
      url: () => "http://h/p?q",
      currentUrl: () => "http://h/p?q",
      get headerList() {
        return list.map(([k, v]): [string, string] => [k, v]);
      },
      header: (name) => ({ "x-a": "1, 2", host: "h" } as Record<string, string>)[name] ?? null,
      body,
      onCancel: (fn) => aborts.push(fn),
      redirectMode: "follow",
      redirectCount: 0,
      clientRid: null,
      blobUrlEntry: null,
    });
    const stream = new ReadableStream<Uint8Array>();
    const req = lazyRequest(inner(innerBody(stream, 2)));
    const isBodyKept = req.body === stream && !req.bodyUsed;
    let isImmutable = false;
    try {
      req.headers.set("x-b", "1");
    } catch {
      isImmutable = true;
    }
    const clone = req.clone();
    const copy = new Request(lazyRequest(inner(null)), { method: "PUT", body: "b" });
    const empty = lazyRequest(inner(innerBody(null, 0)));
    const unread = lazyRequest(inner(null));
    cancelUnread(unread);
    // The clone made req.signal (onCancel), and made its own on it; new Request(x) made x's.
    const isAbortedLater = !req.signal.aborted && !clone.signal.aborted && aborts.length === 2;
    aborts[0]();
    return isBodyKept && isImmutable && isAbortedLater && req.method === "get" &&
      req.url === "http://h/p?q" && req.headers.get("X-A") === "1, 2" &&
      req.headers.get("host") === "h" &&
      JSON.stringify([...req.headers]) === '[["host","h"],["x-a","1, 2"]]' &&
      req.headers.has("x-a") && clone.url === req.url && clone.method === "get" &&
      clone.headers.get("x-a") === "1, 2" && copy.method === "PUT" &&
      copy.url === "http://h/p?q" && copy.headers.get("x-a") === "1, 2" && req.signal.aborted &&
      clone.signal.aborted && (req.signal.reason as Error)?.name === "AbortError" &&
      unread.signal.aborted && empty.body instanceof ReadableStream && !empty.bodyUsed;
  } catch {
    return false;
  }
}

/**
 * An inner body over `stream` (null: an empty body); `length` is the Content-Length, when the
 * request has one.
 */
function innerBody(stream: ReadableStream<Uint8Array> | null, length: number): unknown {
  const body = stream === null ? new InnerBody!() : new InnerBody!(stream);
  if (length >= 0) body.length = length;
  return body;
}

/** The client left before the handler made `req.signal`: it will be made aborted. */
function cancelUnread(req: Request): void {
  const bag = req as unknown as Bag;
  if (bag[SIGNAL_CACHE!] === undefined) bag[SIGNAL_CACHE!] = false;
}

const IS_LAZY_REQUEST = lazyRequestWorks();
const IS_BODY_SHORTCUT = bodyShortcutWorks();
const IS_SIGNAL_SHORTCUT = signalShortcutWorks();
const IS_HEAD_SHORTCUT = headShortcutWorks();
const IS_METHOD_SHORTCUT = methodShortcutWorks();

/**
 * When `res` is status 200 with no header but (maybe) Content-Type — what Deno.serve writes
 * without touching `res.headers` — that content type, or null for none; otherwise undefined
 * (read the headers). Call before `res.headers`, which turns the shortcut off.
 */
export function fastContentType(res: Response): string | null | undefined {
  return IS_HEAD_SHORTCUT ? internalContentType(res) : undefined;
}

/**
 * The full body of `res` when Deno already holds it (no stream to read): a string, bytes, or
 * null for no body. `undefined` means "read `res.body` as a stream". Call before reading
 * `res.body`.
 */
export function fixedBody(res: Response): Uint8Array | string | null | undefined {
  return IS_BODY_SHORTCUT ? internalBody(res) : undefined;
}

/**
 * Whether {@linkcode requestOf} works. When false, build the Request with `new Request()`
 * ({@linkcode attachSignal}, {@linkcode keepMethod}).
 */
export const canMakeLazyRequest: boolean = IS_LAZY_REQUEST;

/**
 * A Request over `inner`, as Deno.serve makes one (only when {@linkcode canMakeLazyRequest}):
 * its method, URL, headers, body and signal are `inner`'s, read when the handler reads them.
 */
export function requestOf(inner: InnerRequest): Request {
  return lazyRequest(inner);
}

/**
 * The body for an {@linkcode InnerRequest}: `stream` (null: empty), with its Content-Length
 * (or -1).
 */
export function innerBodyOf(
  stream: ReadableStream<Uint8Array> | null,
  contentLength: number,
): unknown {
  return innerBody(stream, contentLength);
}

/**
 * The client of a Request from {@linkcode requestOf} went away before the handler read
 * `req.signal`: it reads an aborted signal (one it made was aborted through `onCancel`).
 */
export function cancelUnreadSignal(req: Request): void {
  cancelUnread(req);
}

/** Whether {@linkcode attachSignal} works; when false, pass `signal` in RequestInit instead. */
export const canAttachSignal: boolean = IS_SIGNAL_SHORTCUT;

/** Makes `req.signal` be `signal` (only when {@linkcode canAttachSignal}). */
export function attachSignal(req: Request, signal: AbortSignal): void {
  (req as unknown as Bag)[SIGNAL_CACHE!] = signal;
}

/**
 * Whether {@linkcode keepMethod} works. When false, `new Request()` upper-cases the six
 * methods of the Fetch standard's "normalize" and refuses TRACE and TRACK.
 */
export const canKeepMethod: boolean = IS_METHOD_SHORTCUT;

/**
 * Makes `req.method` be `method` as the client sent it (only when {@linkcode canKeepMethod};
 * before anything reads `req.method`). Build `req` with a stand-in method that allows a body.
 */
export function keepMethod(req: Request, method: string): void {
  setMethod(req, method);
}
