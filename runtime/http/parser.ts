/**
 * @module
 * Parses HTTP/1.1 request heads (RFC 9112 §2–§6) from bytes; never touches sockets. Strict
 * where leniency lets a request be read two ways (request smuggling): CRLF only (no bare CR or
 * LF anywhere in the head), one SP between request-line parts, no obs-fold, no whitespace
 * before a field's colon, one Host, one Content-Length, never Content-Length with
 * Transfer-Encoding, `chunked` only.
 */
import { HttpError } from "./errors.ts";
import { IS_FIELD_CHAR, IS_TARGET_CHAR, IS_TCHAR } from "./chars.ts";
import type { HttpLimits } from "./limits.ts";
import { RequestHead } from "./head.ts";

export { RequestHead };

/** The outcome of {@linkcode parseRequestHead}. */
export type HeadParse =
  | { kind: "head"; head: RequestHead; length: number }
  | { kind: "more"; resumeAt: number };

const CR = 13, LF = 10, SP = 32, HTAB = 9, COLON = 58;
const decoder = new TextDecoder();

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
  for (;;) {
    const lf = buf.indexOf(LF, lineStart);
    if (lf < 0) break;
    if (lf === lineStart || buf[lf - 1] !== CR) {
      throw new HttpError(lineStart === start ? "bad-request-line" : "bad-header", "bare LF");
    }
    if (lineStart === start && lf - 1 - start > limits.maxRequestLineBytes) {
      throw new HttpError("uri-too-long", `request line over ${limits.maxRequestLineBytes} bytes`);
    }
    if (lf - lineStart === 1) {
      end = lf + 1;
      break;
    }
    lineStart = lf + 1;
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

/** Decodes bytes [from, to) as latin-1 (RFC 9110 §5.5: field values are octets). */
function latin1(buf: Uint8Array, from: number, to: number, isAscii: boolean): string {
  if (isAscii) return decoder.decode(buf.subarray(from, to));
  let s = "";
  for (let i = from; i < to; i += 4096) {
    s += String.fromCharCode(...buf.subarray(i, Math.min(to, i + 4096)));
  }
  return s;
}

/** The methods most requests use, as constants: no string is cut for them. */
const COMMON_METHODS = ["GET", "POST", "PUT", "HEAD", "DELETE", "PATCH", "OPTIONS"].map((m) => ({
  method: m,
  bytes: Array.from(m, (c) => c.charCodeAt(0)),
}));

function methodOf(buf: Uint8Array, start: number, end: number, text: string, at: number): string {
  for (const { method, bytes } of COMMON_METHODS) {
    if (bytes.length !== end - start) continue;
    let i = 0;
    while (i < bytes.length && buf[start + i] === bytes[i]) i++;
    if (i === bytes.length) return method;
  }
  return text.slice(at, at + end - start);
}

/**
 * The fields the engine acts on, by name (any case), told apart by length and bytes before any
 * string is made: 0 for a field it only passes on.
 */
const HOST = 1, CONTENT_LENGTH = 2, TRANSFER_ENCODING = 3, CONNECTION = 4, EXPECT = 5, UPGRADE = 6;
const KNOWN_FIELDS = new Map<number, { kind: number; bytes: number[] }[]>();
for (
  const [name, kind] of [
    ["host", HOST],
    ["content-length", CONTENT_LENGTH],
    ["transfer-encoding", TRANSFER_ENCODING],
    ["connection", CONNECTION],
    ["expect", EXPECT],
    ["upgrade", UPGRADE],
  ] as const
) {
  const list = KNOWN_FIELDS.get(name.length) ?? [];
  list.push({ kind, bytes: Array.from(name, (c) => c.charCodeAt(0)) });
  KNOWN_FIELDS.set(name.length, list);
}

function fieldKind(buf: Uint8Array, start: number, end: number): number {
  const candidates = KNOWN_FIELDS.get(end - start);
  if (candidates === undefined) return 0;
  for (const { kind, bytes } of candidates) {
    let i = 0;
    // Field names are tokens: OR-ing 0x20 folds ASCII letters and leaves "-" (0x2d) as is.
    while (i < bytes.length && (buf[start + i] | 0x20) === bytes[i]) i++;
    if (i === bytes.length) return kind;
  }
  return 0;
}

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

  // Field lines: field-name ":" OWS field-value OWS CRLF (RFC 9112 §5). Offsets only: the
  // strings are cut from one decoded copy of the head, on demand (head.ts).
  const fields: number[] = [];
  const known: number[] = []; // [kind, field index] of the fields the engine acts on
  let isAscii = true;
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
    for (;; i++) {
      const c = buf[i];
      if (IS_FIELD_CHAR[c] === 0) break;
      if (c > 0x7f) isAscii = false;
    }
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
    if (kind !== 0) known.push(kind, fields.length >> 2);
    fields.push(nameStart - start, nameEnd - start, valueStart - start, valueEnd - start);
  }
  const text = latin1(buf, start, last, isAscii);
  const method = methodOf(buf, start, methodEnd, text, 0);
  let hostIndex = -1, hostCount = 0;
  for (let k = 0; k < known.length; k += 2) {
    if (known[k] === HOST) {
      hostCount++;
      hostIndex = known[k + 1];
    }
  }
  const head = new RequestHead(
    text,
    method,
    minor,
    [targetStart - start, targetEnd - start],
    fields,
    hostIndex,
  );
  if (known.length > 0) applyKnownFields(head, known, hostCount);
  else if (minor === 1) throw new HttpError("missing-host", "HTTP/1.1 without Host");
  return head;
}

/** Checks and applies the fields that frame the message and steer the connection. */
function applyKnownFields(head: RequestHead, known: number[], hostCount: number): void {
  const minor = head.minor;
  let transferEncoding: string | null = null;
  let connection = "";
  let upgrade: string | null = null;
  for (let k = 0; k < known.length; k += 2) {
    const i = known[k + 1];
    switch (known[k]) {
      case CONTENT_LENGTH:
        if (head.contentLength !== -1) {
          throw new HttpError("duplicate-content-length", "more than one Content-Length");
        }
        head.contentLength = parseContentLength(head.value(i));
        break;
      case TRANSFER_ENCODING:
        transferEncoding = transferEncoding === null
          ? head.value(i)
          : `${transferEncoding},${head.value(i)}`;
        break;
      case CONNECTION:
        connection = connection ? `${connection},${head.value(i)}` : head.value(i);
        break;
      case EXPECT:
        head.expect = head.value(i).toLowerCase();
        break;
      case UPGRADE:
        upgrade = head.value(i);
        break;
    }
  }
  if (hostCount > 1) throw new HttpError("duplicate-host", "more than one Host");
  if (minor === 1 && hostCount === 0) throw new HttpError("missing-host", "HTTP/1.1 without Host");
  const host = head.host;
  if (host !== null && !isValidHost(host)) {
    throw new HttpError("bad-header", "invalid Host");
  }
  if (transferEncoding !== null) {
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
    head.isChunked = checkTransferEncoding(transferEncoding);
  }
  if (connection) {
    for (const token of connection.split(",")) {
      const t = token.trim().toLowerCase();
      if (t === "close") head.isKeepAlive = false;
      else if (t === "keep-alive" && minor === 0) head.isKeepAlive = true;
      else if (t === "upgrade" && upgrade !== null) head.upgrade = upgrade;
    }
  }
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
function parseContentLength(value: string): number {
  if (value.length === 0 || value.length > 15) {
    throw new HttpError("bad-content-length", `invalid Content-Length "${value.slice(0, 32)}"`);
  }
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) {
      throw new HttpError("bad-content-length", `invalid Content-Length "${value}"`);
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

/** Host = uri-host [ ":" port ] (RFC 9110 §7.2): reg-name, IPv4 or an IP-literal in brackets. */
function isValidHost(host: string): boolean {
  for (let i = 0; i < host.length; i++) {
    const c = host.charCodeAt(i);
    const isAllowed = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) ||
      (c >= 0x61 && c <= 0x7a) || "-._~!$&'()*+,;=:%[]".includes(host[i]);
    if (!isAllowed) return false;
  }
  return true;
}
