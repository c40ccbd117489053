/**
 * @module
 * Parses HTTP/1.1 request heads (RFC 9112 §2–§6) from bytes; never touches sockets. Strict
 * where leniency lets a request be read two ways (request smuggling): CRLF only (no bare CR or
 * LF anywhere in the head), one SP between request-line parts, no obs-fold, no whitespace
 * before a field's colon, one Host, one Content-Length, never Content-Length with
 * Transfer-Encoding, `chunked` only.
 */
import { HttpError } from "./errors.ts";
import { IS_FIELD_CHAR, IS_HOST_CHAR, IS_TARGET_CHAR, IS_TCHAR } from "./chars.ts";
import type { HttpLimits } from "./limits.ts";
import { latin1, RequestHead } from "./head.ts";

export { RequestHead };

/** The outcome of {@linkcode parseRequestHead}. */
export type HeadParse =
  | { kind: "head"; head: RequestHead; length: number }
  | { kind: "more"; resumeAt: number };

const CR = 13, LF = 10, SP = 32, HTAB = 9, COLON = 58, COMMA = 44;

/**
 * Parses one request head from the start of `buf`. `resumeAt` is where the previous call
 * asked to resume (0 the first time), so a head that trickles in is scanned once in total.
 * Returns the head and its length in bytes (leading empty lines included), or where to
 * resume when more bytes are needed. Throws {@linkcode HttpError} on a malformed head or one
 * over the limits, as soon as that is certain.
 */
export function parseRequestHead(
  buf: Uint8Array,
  resumeAt: number,
  limits: HttpLimits,
): HeadParse {
  const len = buf.length;
  // RFC 9112 §2.2: ignore empty lines before the request-line.
  let start = 0;
  while (start + 1 < len && buf[start] === CR && buf[start + 1] === LF) start += 2;
  if (start === len || (start + 1 === len && buf[start] === CR)) {
    if (start > limits.maxHeadBytes) throw new HttpError("headers-too-large", "empty lines");
    return { kind: "more", resumeAt: 0 };
  }
  // Find the empty line that ends the head, checking every line ends in CRLF.
  let lineStart = Math.max(resumeAt, start);
  let end = -1;
  for (let i = lineStart; i < len; i++) {
    if (buf[i] !== LF) continue;
    if (i === lineStart || buf[i - 1] !== CR) {
      throw new HttpError(lineStart === start ? "bad-request-line" : "bad-header", "bare LF");
    }
    if (lineStart === start && i - 1 - start > limits.maxRequestLineBytes) {
      throw new HttpError("uri-too-long", `request line over ${limits.maxRequestLineBytes} bytes`);
    }
    if (i - lineStart === 1) {
      end = i + 1;
      break;
    }
    lineStart = i + 1;
  }
  if (end < 0) {
    if (lineStart === start && len - start > limits.maxRequestLineBytes + 1) {
      throw new HttpError("uri-too-long", `request line over ${limits.maxRequestLineBytes} bytes`);
    }
    if (len - start > limits.maxHeadBytes) {
      throw new HttpError("headers-too-large", `head over ${limits.maxHeadBytes} bytes`);
    }
    return { kind: "more", resumeAt: lineStart };
  }
  if (end - start > limits.maxHeadBytes) {
    throw new HttpError("headers-too-large", `head over ${limits.maxHeadBytes} bytes`);
  }
  return { kind: "head", head: parseLines(buf, start, end, limits), length: end };
}

/** The methods most requests use, as constants: no string is cut for them. */
const COMMON_METHODS = ["GET", "POST", "PUT", "HEAD", "DELETE", "PATCH", "OPTIONS"].map((m) => ({
  method: m,
  bytes: Array.from(m, (c) => c.charCodeAt(0)),
}));

function methodOf(buf: Uint8Array, start: number, end: number): string {
  const n = end - start;
  for (let k = 0; k < COMMON_METHODS.length; k++) {
    const { method, bytes } = COMMON_METHODS[k];
    if (bytes.length !== n) continue;
    let i = 0;
    while (i < n && buf[start + i] === bytes[i]) i++;
    if (i === n) return method;
  }
  return latin1(buf, start, end);
}

/** The fields the engine acts on, told apart by length and bytes before any string is made. */
const HOST = 1, CONTENT_LENGTH = 2, TRANSFER_ENCODING = 3, CONNECTION = 4, EXPECT = 5, UPGRADE = 6;
const KNOWN_NAMES: [string, number][] = [
  ["host", HOST],
  ["content-length", CONTENT_LENGTH],
  ["transfer-encoding", TRANSFER_ENCODING],
  ["connection", CONNECTION],
  ["expect", EXPECT],
  ["upgrade", UPGRADE],
];
/** By name length: the known names of that length, as lowercase bytes. */
const KNOWN_BY_LENGTH: ({ kind: number; bytes: number[] }[] | undefined)[] = [];
for (const [name, kind] of KNOWN_NAMES) {
  (KNOWN_BY_LENGTH[name.length] ??= []).push({
    kind,
    bytes: Array.from(name, (c) => c.charCodeAt(0)),
  });
}

function fieldKind(buf: Uint8Array, start: number, end: number): number {
  const candidates = KNOWN_BY_LENGTH[end - start];
  if (candidates === undefined) return 0;
  for (let k = 0; k < candidates.length; k++) {
    const { kind, bytes } = candidates[k];
    let i = 0;
    // Field names are tokens: OR-ing 0x20 folds ASCII letters and leaves "-" (0x2d) as is.
    while (i < bytes.length && (buf[start + i] | 0x20) === bytes[i]) i++;
    if (i === bytes.length) return kind;
  }
  return 0;
}

/** What the fields the engine acts on said, gathered during the scan. */
interface Known {
  hostCount: number;
  hostIndex: number;
  contentLength: number;
  transferEncoding: string | null;
  expect: string | null;
  upgrade: string | null;
  isClose: boolean;
  isKeepAlive: boolean;
  isUpgrade: boolean;
}

/** Reset at each parse (parsing is synchronous): one object for all of them. */
const KNOWN: Known = {
  hostCount: 0,
  hostIndex: -1,
  contentLength: -1,
  transferEncoding: null,
  expect: null,
  upgrade: null,
  isClose: false,
  isKeepAlive: false,
  isUpgrade: false,
};

function parseLines(buf: Uint8Array, start: number, end: number, limits: HttpLimits): RequestHead {
  // Request line: method SP request-target SP HTTP-version CRLF (RFC 9112 §3).
  let i = start;
  while (IS_TCHAR[buf[i]] === 1) i++;
  if (i === start || buf[i] !== SP) throw new HttpError("bad-request-line", "invalid method");
  const methodEnd = i++;
  const targetStart = i;
  while (IS_TARGET_CHAR[buf[i]] === 1) i++;
  if (i === targetStart || buf[i] !== SP) {
    throw new HttpError("bad-request-line", "invalid request-target");
  }
  const targetEnd = i++;
  const minor = parseVersion(buf, i);
  i += 8;
  if (buf[i] !== CR) throw new HttpError("bad-request-line", "junk after HTTP-version");
  // RFC 9112 §2.2: a CR not followed by LF is an error; skipping two bytes would hide the
  // byte after it and read what follows as a field (request smuggling).
  if (buf[i + 1] !== LF) throw new HttpError("bad-request-line", "bare CR");
  i += 2;

  // Field lines: field-name ":" OWS field-value OWS CRLF (RFC 9112 §5). Only offsets are
  // kept: the head cuts strings from the bytes when asked (head.ts).
  const fields: number[] = [];
  const known = KNOWN;
  known.hostCount = 0;
  known.hostIndex = -1;
  known.contentLength = -1;
  known.transferEncoding = null;
  known.expect = null;
  known.upgrade = null;
  known.isClose = false;
  known.isKeepAlive = false;
  known.isUpgrade = false;
  const last = end - 2;
  while (i < last) {
    if (buf[i] === SP || buf[i] === HTAB) throw new HttpError("obs-fold", "line folding");
    const nameStart = i;
    while (IS_TCHAR[buf[i]] === 1) i++;
    if (i === nameStart || buf[i] !== COLON) {
      throw new HttpError("bad-header", "invalid field name");
    }
    const nameEnd = i++;
    while (buf[i] === SP || buf[i] === HTAB) i++;
    const valueStart = i;
    while (IS_FIELD_CHAR[buf[i]] === 1) i++;
    if (buf[i] !== CR) throw new HttpError("bad-header", "invalid byte in field value");
    if (buf[i + 1] !== LF) throw new HttpError("bad-header", "bare CR");
    let valueEnd = i;
    while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HTAB)) {
      valueEnd--;
    }
    i += 2;
    if (fields.length === limits.maxHeaderCount * 4) {
      throw new HttpError("too-many-headers", `more than ${limits.maxHeaderCount} fields`);
    }
    const kind = fieldKind(buf, nameStart, nameEnd);
    if (kind !== 0) readKnownField(buf, kind, valueStart, valueEnd, fields.length >> 2, known);
    fields.push(nameStart - start, nameEnd - start, valueStart - start, valueEnd - start);
  }
  if (known.hostCount > 1) throw new HttpError("duplicate-host", "more than one Host");
  if (minor === 1 && known.hostCount === 0) {
    throw new HttpError("missing-host", "HTTP/1.1 without Host");
  }
  const head = new RequestHead(
    buf,
    start,
    last,
    methodOf(buf, start, methodEnd),
    minor,
    targetStart - start,
    targetEnd - start,
    fields,
    known.hostIndex,
  );
  head.contentLength = known.contentLength;
  head.expect = known.expect;
  if (known.transferEncoding !== null) {
    if (head.contentLength !== -1) {
      throw new HttpError(
        "content-length-with-transfer-encoding",
        "both Content-Length and Transfer-Encoding",
      );
    }
    if (minor === 0) {
      // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means the framing is faulty.
      throw new HttpError("bad-transfer-encoding", "Transfer-Encoding in HTTP/1.0");
    }
    head.isChunked = checkTransferEncoding(known.transferEncoding);
  }
  // RFC 9112 §9.3: 1.1 persists unless "close"; 1.0 only with "keep-alive".
  if (known.isClose) head.isKeepAlive = false;
  else if (minor === 0 && known.isKeepAlive) head.isKeepAlive = true;
  if (known.isUpgrade && known.upgrade !== null) head.upgrade = known.upgrade;
  return head;
}

/** Checks one field the engine acts on, from its bytes, as the scan meets it. */
function readKnownField(
  buf: Uint8Array,
  kind: number,
  from: number,
  to: number,
  index: number,
  known: Known,
): void {
  switch (kind) {
    case HOST:
      known.hostCount++;
      known.hostIndex = index;
      for (let i = from; i < to; i++) {
        if (IS_HOST_CHAR[buf[i]] === 0) throw new HttpError("bad-header", "invalid Host");
      }
      break;
    case CONTENT_LENGTH:
      if (known.contentLength !== -1) {
        throw new HttpError("duplicate-content-length", "more than one Content-Length");
      }
      known.contentLength = parseContentLength(buf, from, to);
      break;
    case TRANSFER_ENCODING: {
      const value = latin1(buf, from, to);
      known.transferEncoding = known.transferEncoding === null
        ? value
        : `${known.transferEncoding},${value}`;
      break;
    }
    case CONNECTION:
      readConnection(buf, from, to, known);
      break;
    case EXPECT:
      known.expect = latin1(buf, from, to).toLowerCase();
      break;
    case UPGRADE:
      known.upgrade = latin1(buf, from, to);
      break;
  }
}

/** Connection = #connection-option (RFC 9110 §7.6.1): the options we act on, without case. */
function readConnection(buf: Uint8Array, from: number, to: number, known: Known): void {
  let i = from;
  while (i < to) {
    while (i < to && (buf[i] === SP || buf[i] === HTAB || buf[i] === COMMA)) i++;
    const tokenStart = i;
    while (i < to && buf[i] !== COMMA) i++;
    let tokenEnd = i;
    while (tokenEnd > tokenStart && (buf[tokenEnd - 1] === SP || buf[tokenEnd - 1] === HTAB)) {
      tokenEnd--;
    }
    if (isLowerToken(buf, tokenStart, tokenEnd, CLOSE)) known.isClose = true;
    else if (isLowerToken(buf, tokenStart, tokenEnd, KEEP_ALIVE)) known.isKeepAlive = true;
    else if (isLowerToken(buf, tokenStart, tokenEnd, UPGRADE_TOKEN)) known.isUpgrade = true;
  }
}

const CLOSE = Array.from("close", (c) => c.charCodeAt(0));
const KEEP_ALIVE = Array.from("keep-alive", (c) => c.charCodeAt(0));
const UPGRADE_TOKEN = Array.from("upgrade", (c) => c.charCodeAt(0));

/** Whether bytes [from, to) spell `lower` (lowercase letters and "-") in any case. */
function isLowerToken(buf: Uint8Array, from: number, to: number, lower: number[]): boolean {
  if (to - from !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    if ((buf[from + i] | 0x20) !== lower[i]) return false;
  }
  return true;
}

/** "HTTP/1.y" → 0 or 1; another major version → 505; anything else → 400. */
function parseVersion(buf: Uint8Array, i: number): number {
  // "HTTP/" = 48 54 54 50 2F
  if (
    buf[i] !== 0x48 || buf[i + 1] !== 0x54 || buf[i + 2] !== 0x54 || buf[i + 3] !== 0x50 ||
    buf[i + 4] !== 0x2f || !isDigit(buf[i + 5]) || buf[i + 6] !== 0x2e || !isDigit(buf[i + 7])
  ) {
    throw new HttpError("bad-version", "malformed HTTP-version");
  }
  if (buf[i + 5] !== 0x31) throw new HttpError("unsupported-version", "only HTTP/1.x");
  // RFC 9112 §2.6: a higher minor version is handled as the highest one we implement.
  return buf[i + 7] === 0x30 ? 0 : 1;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** Content-Length = 1*DIGIT (RFC 9110 §8.6); lists and signs are refused. */
function parseContentLength(buf: Uint8Array, from: number, to: number): number {
  if (to === from || to - from > 15) {
    const shown = latin1(buf, from, Math.min(to, from + 32));
    throw new HttpError("bad-content-length", `invalid Content-Length "${shown}"`);
  }
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = buf[i];
    if (c < 0x30 || c > 0x39) {
      throw new HttpError(
        "bad-content-length",
        `invalid Content-Length "${latin1(buf, from, to)}"`,
      );
    }
    n = n * 10 + (c - 0x30);
  }
  return n;
}

/** Only `chunked` is understood (RFC 9112 §6.1, §6.3). Returns true (the body is chunked). */
function checkTransferEncoding(value: string): boolean {
  const codings = value.split(",").map((c) => c.trim().toLowerCase()).filter((c) => c !== "");
  if (codings.length === 0 || codings[codings.length - 1] !== "chunked") {
    throw new HttpError("bad-transfer-encoding", `chunked is not the final coding in "${value}"`);
  }
  if (codings.length > 1) {
    if (codings.slice(0, -1).includes("chunked")) {
      throw new HttpError("bad-transfer-encoding", "chunked applied twice");
    }
    throw new HttpError("unsupported-transfer-encoding", `cannot decode "${value}"`);
  }
  return true;
}
