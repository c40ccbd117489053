/**
 * @module
 * Four shortcuts into Deno's own Request/Response objects, the ones Deno.serve takes:
 * reading a Response body that Deno already holds in full (a string or bytes given to the
 * constructor) without creating a stream (saves ~2.5 µs a response), knowing a plain 200's
 * only header without materialising `res.headers` (~1 µs), giving a Request our own abort
 * signal without the cost of `RequestInit.signal` (~2 µs a request), and giving a Request the
 * method exactly as the client sent it where `new Request()` would upper-case or refuse it
 * (as Deno.serve does). All rest on internal symbols of the pinned Deno; each is checked once
 * at load against the public API and switched off, falling back to the public path, if Deno
 * ever behaves differently.
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

/** A response whose only header is (at most) a Content-Type, status 200: Deno.serve's fast path. */
export interface FastHead {
  contentType: string | null;
}

function internalHead(res: Response): FastHead | null {
  const bag = res as unknown as Bag;
  if (bag[FAST_STATUS!] !== 200) return null;
  switch (bag[FAST_KIND!]) {
    case 0:
      return { contentType: null };
    case 1:
      return { contentType: "text/plain;charset=UTF-8" };
    case 2:
      return typeof bag[FAST_TYPE!] === "string"
        ? { contentType: bag[FAST_TYPE!] as string }
        : null;
    default:
      return null;
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
    return internalHead(new Response("a"))?.contentType === "text/plain;charset=UTF-8" &&
      internalHead(new Response(new Uint8Array(1)))?.contentType === null &&
      internalHead(Response.json({}))?.contentType === "application/json" &&
      internalHead(typed)?.contentType === "text/html" &&
      internalHead(new Response("a", { status: 404 })) === null &&
      internalHead(new Response("a", { headers: { "x-a": "1" } })) === null &&
      internalHead(touched) === null && internalHead(set) === null;
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

const IS_BODY_SHORTCUT = bodyShortcutWorks();
const IS_SIGNAL_SHORTCUT = signalShortcutWorks();
const IS_HEAD_SHORTCUT = headShortcutWorks();
const IS_METHOD_SHORTCUT = methodShortcutWorks();

/**
 * When `res` is status 200 with no header but (maybe) Content-Type — what Deno.serve writes
 * without touching `res.headers` — that content type; otherwise null (read the headers). Call
 * before `res.headers`, which turns the shortcut off.
 */
export function fastHead(res: Response): FastHead | null {
  return IS_HEAD_SHORTCUT ? internalHead(res) : null;
}

/**
 * The full body of `res` when Deno already holds it (no stream to read): a string, bytes, or
 * null for no body. `undefined` means "read `res.body` as a stream". Call before reading
 * `res.body`.
 */
export function fixedBody(res: Response): Uint8Array | string | null | undefined {
  return IS_BODY_SHORTCUT ? internalBody(res) : undefined;
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
