/**
 * @module
 * Serializes response heads and chunked framing (RFC 9112 §4, §7.1) into bytes; never touches
 * sockets. Framing headers (Content-Length, Transfer-Encoding, Connection) are decided here
 * from the body, not copied from the handler's Response.
 */
import { REASON_PHRASES } from "./errors.ts";

/** How the body of a response is delimited on the wire. */
export type Framing =
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  /** No body and no length field (1xx, 204, 304). */
  | { kind: "none" }
  /** Body ends when the connection closes (HTTP/1.0 client, unknown length). */
  | { kind: "close" };

const encoder = new TextEncoder();
let dateSecond = 0;
let dateValue = "";

/** The current IMF-fixdate (RFC 9110 §5.6.7), computed at most once a second. */
export function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateValue = new Date(now).toUTCString();
  }
  return dateValue;
}

/** What the handler's headers say, gathered in one pass over them. */
export interface HeaderScan {
  /** The handler's field lines ("name: value\r\n" each), framing fields left out. */
  lines: string;
  /** The handler set `Connection: close`. */
  isClose: boolean;
  /** The handler's Content-Length, or -1. */
  contentLength: number;
}

/** Fields the writer owns: a handler's values for these are not copied. */
const FRAMING_FIELDS = new Set(["content-length", "transfer-encoding", "connection"]);
const CLOSE_TOKEN = /(?:^|,)\s*close\s*(?:,|$)/i;

/** Collects the handler's header lines, minus the framing fields the writer decides. */
export function scanHeaders(headers: Headers): HeaderScan {
  let lines = "";
  let isClose = false;
  let contentLength = -1;
  let hasDate = false;
  for (const [name, value] of headers) {
    if (FRAMING_FIELDS.has(name)) {
      if (name === "connection") isClose ||= CLOSE_TOKEN.test(value);
      else if (name === "content-length" && /^\d{1,15}$/.test(value)) contentLength = Number(value);
      continue;
    }
    if (name === "date") hasDate = true;
    lines += `${name}: ${value}\r\n`;
  }
  // RFC 9110 §6.6.1: an origin server with a clock MUST send Date.
  if (!hasDate) lines += `date: ${httpDate()}\r\n`;
  return { lines, isClose, contentLength };
}

/** The scan of a response whose only header is `contentType` (Deno's fast responses). */
export function contentTypeOnly(contentType: string | null): HeaderScan {
  const date = `date: ${httpDate()}\r\n`;
  return {
    lines: contentType === null ? date : `content-type: ${contentType}\r\n${date}`,
    isClose: false,
    contentLength: -1,
  };
}

/** Options for {@linkcode responseHeadString}. */
export interface ResponseHeadOptions {
  status: number;
  statusText?: string;
  scan: HeaderScan;
  framing: Framing;
  /** Send `Connection: close`. */
  isClose: boolean;
  /** The client is HTTP/1.0 and asked for keep-alive, which we grant. */
  isKeepAlive10?: boolean;
}

/** The head of a response as a string of latin-1 characters (one per byte). */
export function responseHeadString(opts: ResponseHeadOptions): string {
  const reason = opts.statusText || REASON_PHRASES[opts.status] || "";
  let s = `HTTP/1.1 ${opts.status} ${reason}\r\n${opts.scan.lines}`;
  const f = opts.framing;
  if (f.kind === "length") s += `content-length: ${f.length}\r\n`;
  else if (f.kind === "chunked") s += "transfer-encoding: chunked\r\n";
  if (opts.isClose || f.kind === "close") s += "connection: close\r\n";
  else if (opts.isKeepAlive10) s += "connection: keep-alive\r\n";
  return s + "\r\n";
}

const SCRATCH_SIZE = 64 * 1024;
const scratch = new Uint8Array(SCRATCH_SIZE);
const bodyScratch = new Uint8Array(SCRATCH_SIZE);
const NON_ASCII = /[\u0080-\uffff]/;

// --- simple responses: a status, at most a Content-Type, a body held whole ---

/** The shared buffer {@linkcode writeSimpleResponse} writes into: send it at once. */
export const RESPONSE_OUT: Uint8Array = scratch;

/** How {@linkcode writeSimpleResponse} treats the body. */
export const WITH_BODY = 0, HEAD_ONLY = 1, NO_BODY = 2;

/** "HTTP/1.1 NNN Reason\r\n" for each status with its standard reason, made on first use. */
const statusLines: (Uint8Array | undefined)[] = [];
/** "content-type: …\r\n" for the content types in use (bounded). */
const typeLines = new Map<string, Uint8Array>();
const MAX_TYPE_LINES = 64;
let dateLineSecond = -1;
let dateLine = encoder.encode("date: \r\n");
const CONTENT_LENGTH = encoder.encode("content-length: ");
const CLOSE_LINE = encoder.encode("connection: close\r\n");
const KEEP_ALIVE_LINE = encoder.encode("connection: keep-alive\r\n");

function statusLine(status: number, statusText: string): Uint8Array {
  const standard = REASON_PHRASES[status] ?? "";
  if (statusText !== "" && statusText !== standard) {
    return latin1Bytes(`HTTP/1.1 ${status} ${statusText}\r\n`);
  }
  return statusLines[status] ??= encoder.encode(`HTTP/1.1 ${status} ${standard}\r\n`);
}

function typeLine(contentType: string): Uint8Array {
  let line = typeLines.get(contentType);
  if (line === undefined) {
    if (typeLines.size >= MAX_TYPE_LINES) typeLines.clear();
    line = latin1Bytes(`content-type: ${contentType}\r\n`);
    typeLines.set(contentType, line);
  }
  return line;
}

/** "date: <IMF-fixdate>\r\n" for wall-clock time `ms` (RFC 9110 §6.6.1), made once a second. */
function dateLineAt(ms: number): Uint8Array {
  const second = Math.floor(ms / 1000);
  if (second !== dateLineSecond) {
    dateLineSecond = second;
    dateLine = encoder.encode(`date: ${new Date(second * 1000).toUTCString()}\r\n`);
  }
  return dateLine;
}

/** Writes `n` in decimal at `pos`; returns the position after it. */
function putDecimal(out: Uint8Array, n: number, pos: number): number {
  if (n < 10) {
    out[pos] = 0x30 + n;
    return pos + 1;
  }
  const digits = n.toString();
  for (let i = 0; i < digits.length; i++) out[pos + i] = digits.charCodeAt(i);
  return pos + digits.length;
}

/** Copies the ASCII string `s` to `pos`; returns false (having written part) at a non-ASCII char. */
function putAscii(out: Uint8Array, s: string, pos: number): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return false;
    out[pos + i] = c;
  }
  return true;
}

/**
 * Writes a whole response into {@linkcode RESPONSE_OUT}: the status line, `contentType` (when
 * not null), Date (of wall-clock time `nowMs`), the framing, then `body` — for responses whose
 * head is nothing more (what Deno.serve sends without reading `res.headers`). `mode`: send the
 * body ({@linkcode WITH_BODY}), its length only (HEAD), or neither (1xx, 204, 304). Returns the
 * length written, or -1 when it does not fit (build it with the general path).
 */
export function writeSimpleResponse(
  status: number,
  statusText: string,
  contentType: string | null,
  body: string | Uint8Array | null,
  mode: number,
  isClose: boolean,
  isKeepAlive10: boolean,
  nowMs: number,
): number {
  const out = scratch;
  const line = statusLine(status, statusText);
  out.set(line, 0);
  let pos = line.byteLength;
  if (contentType !== null) {
    const type = typeLine(contentType);
    if (pos + type.byteLength > 1024) return -1;
    out.set(type, pos);
    pos += type.byteLength;
  }
  const date = dateLineAt(nowMs);
  out.set(date, pos);
  pos += date.byteLength;
  // Body bytes: an ASCII string is copied as is; other strings are encoded first.
  let bodyBytes: Uint8Array | null = null;
  let length = 0;
  if (typeof body === "string") {
    length = mode === HEAD_ONLY ? utf8Length(body) : body.length;
  } else if (body !== null) {
    bodyBytes = body;
    length = body.byteLength;
  }
  if (mode !== NO_BODY) {
    for (let attempt = 0;; attempt++) {
      let p = pos;
      out.set(CONTENT_LENGTH, p);
      p = putDecimal(out, length, p + CONTENT_LENGTH.byteLength);
      out[p++] = 0x0d;
      out[p++] = 0x0a;
      p = putConnection(out, p, isClose, isKeepAlive10);
      if (mode === HEAD_ONLY || length === 0) return p;
      if (p + length > SCRATCH_SIZE) return -1;
      if (bodyBytes !== null) {
        out.set(bodyBytes, p);
        return p + length;
      }
      if (putAscii(out, body as string, p)) return p + length;
      if (attempt > 0 || (body as string).length * 3 > SCRATCH_SIZE) return -1;
      length = encoder.encodeInto(body as string, bodyScratch).written;
      bodyBytes = bodyScratch.subarray(0, length);
    }
  }
  return putConnection(out, pos, isClose, isKeepAlive10);
}

function utf8Length(s: string): number {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f) return encoder.encode(s).byteLength;
  }
  return s.length;
}

function putConnection(out: Uint8Array, pos: number, isClose: boolean, isKeepAlive10: boolean) {
  const line = isClose ? CLOSE_LINE : isKeepAlive10 ? KEEP_ALIVE_LINE : null;
  if (line !== null) {
    out.set(line, pos);
    pos += line.byteLength;
  }
  out[pos] = 0x0d;
  out[pos + 1] = 0x0a;
  return pos + 2;
}

/** The UTF-8 bytes of a string body (a view of a shared buffer when small: use at once). */
export function bodyBytes(body: string | Uint8Array): Uint8Array {
  if (typeof body !== "string") return body;
  if (body.length * 3 <= SCRATCH_SIZE) {
    const { written } = encoder.encodeInto(body, bodyScratch);
    return bodyScratch.subarray(0, written);
  }
  return encoder.encode(body);
}

/**
 * Head and body in one buffer, for one send. The result may be a view of a shared scratch
 * buffer: write it at once, and let the socket copy what the kernel does not take.
 */
export function encodeMessage(head: string, body: Uint8Array | null): Uint8Array {
  const bodyLen = body?.byteLength ?? 0;
  if (NON_ASCII.test(head) || head.length + bodyLen > SCRATCH_SIZE) {
    return joinHeadAndBody(head, body);
  }
  const { written } = encoder.encodeInto(head, scratch);
  if (body !== null) scratch.set(body, written);
  return scratch.subarray(0, written + bodyLen);
}

/** Encodes a latin-1 string to bytes (header values are octets, RFC 9110 §5.5). */
export function latin1Bytes(s: string): Uint8Array {
  let isAscii = true;
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f) {
      isAscii = false;
      break;
    }
  }
  if (isAscii) return encoder.encode(s);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/** Head and body in one buffer (one send for small responses). */
export function joinHeadAndBody(head: string, body: Uint8Array | null): Uint8Array {
  const headBytes = latin1Bytes(head);
  if (body === null || body.byteLength === 0) return headBytes;
  const out = new Uint8Array(headBytes.byteLength + body.byteLength);
  out.set(headBytes, 0);
  out.set(body, headBytes.byteLength);
  return out;
}

const CRLF = encoder.encode("\r\n");

/** One chunk of a chunked body: size line, data, CRLF (RFC 9112 §7.1). `data` must not be empty. */
export function encodeChunk(data: Uint8Array): Uint8Array {
  const size = encoder.encode(data.byteLength.toString(16) + "\r\n");
  const out = new Uint8Array(size.byteLength + data.byteLength + 2);
  out.set(size, 0);
  out.set(data, size.byteLength);
  out.set(CRLF, size.byteLength + data.byteLength);
  return out;
}

/** The last chunk with an empty trailer section. */
export const LAST_CHUNK: Uint8Array = encoder.encode("0\r\n\r\n");

/** `100 Continue` interim response (RFC 9110 §15.2.1). */
export const CONTINUE_100: Uint8Array = encoder.encode("HTTP/1.1 100 Continue\r\n\r\n");

/** A complete minimal error response (plain-text body naming the status). */
export function errorResponseBytes(status: number, isClose = true): Uint8Array {
  const reason = REASON_PHRASES[status] ?? "";
  const body = encoder.encode(`${status} ${reason}\n`);
  const head = `HTTP/1.1 ${status} ${reason}\r\ndate: ${httpDate()}\r\n` +
    `content-type: text/plain; charset=utf-8\r\ncontent-length: ${body.byteLength}\r\n` +
    (isClose ? "connection: close\r\n\r\n" : "\r\n");
  return joinHeadAndBody(head, body);
}

/** A chunk of a Response body stream as bytes (Deno accepts any BufferSource, and strings). */
export function toBytes(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (typeof chunk === "string") return new TextEncoder().encode(chunk);
  if (ArrayBuffer.isView(chunk)) {
    return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  throw new TypeError(`response body chunk is ${typeof chunk}, not bytes`);
}
