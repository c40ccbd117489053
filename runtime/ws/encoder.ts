/**
 * @module
 * Encodes the frames a server sends (RFC 6455 §5.2): text and binary messages, optionally
 * fragmented, and ping, pong and close. Server frames are never masked (§5.1). Each frame is
 * one allocation, header and payload together. Returns bytes; writing them is the caller's,
 * and so is the order of frames on the wire. Never touches sockets.
 */
import {
  isControlOpcode,
  isKnownOpcode,
  isValidWireCloseCode,
  MAX_CLOSE_REASON_BYTES,
  MAX_CONTROL_PAYLOAD,
  OPCODE,
  type Opcode,
} from "./constants.ts";

const encoder = new TextEncoder();

/** One frame to encode. */
export interface EncodeFrameOptions {
  opcode: Opcode;
  payload: Uint8Array;
  /** Whether this is the message's last frame. Default true. */
  fin?: boolean;
}

/** Encodes one unmasked frame. Throws `RangeError` for a control frame RFC 6455 forbids. */
export function encodeFrame(options: EncodeFrameOptions): Uint8Array {
  const { opcode, payload, fin = true } = options;
  checkFrame(opcode, payload.length, fin);
  const frame = allocateFrame(opcode, payload.length, fin);
  frame.set(payload, frame.length - payload.length);
  return frame;
}

/** Encodes a text message as one frame, UTF-8 written straight into the frame. */
export function encodeText(text: string): Uint8Array {
  const length = utf8Length(text);
  const frame = allocateFrame(OPCODE.TEXT, length, true);
  encoder.encodeInto(text, frame.subarray(frame.length - length));
  return frame;
}

/** Encodes a binary message as one frame. */
export function encodeBinary(data: Uint8Array): Uint8Array {
  return encodeFrame({ opcode: OPCODE.BINARY, payload: data });
}

/** How {@link encodeMessage} splits a message. */
export interface EncodeMessageOptions {
  /** Payload bytes per frame; a message no longer than this is one frame. Default: no split. */
  fragmentSize?: number;
}

/**
 * Encodes a message as one frame, or fragments of at most `fragmentSize` bytes (§5.4): the
 * first carries the opcode, the rest are continuations, the last has FIN. Text is split on
 * byte boundaries, which may fall inside a code point: only the whole message must be UTF-8.
 */
export function encodeMessage(
  data: string | Uint8Array,
  options: EncodeMessageOptions = {},
): Uint8Array[] {
  const size = options.fragmentSize ?? Infinity;
  if (!(size >= 1)) throw new RangeError(`fragmentSize must be at least 1, got ${size}`);
  const isText = typeof data === "string";
  if (isText && utf8Length(data) <= size) return [encodeText(data)];
  const bytes = isText ? encoder.encode(data) : data;
  const opcode = isText ? OPCODE.TEXT : OPCODE.BINARY;
  if (bytes.length <= size) return [encodeFrame({ opcode, payload: bytes })];
  const frames: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += size) {
    frames.push(encodeFrame({
      opcode: at === 0 ? opcode : OPCODE.CONTINUATION,
      payload: bytes.subarray(at, at + size),
      fin: at + size >= bytes.length,
    }));
  }
  return frames;
}

/** Encodes a ping (payload ≤ 125 bytes, §5.5.2). */
export function encodePing(payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  return encodeFrame({ opcode: OPCODE.PING, payload });
}

/** Encodes a pong; answering a ping, it carries the ping's payload (§5.5.3). */
export function encodePong(payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  return encodeFrame({ opcode: OPCODE.PONG, payload });
}

/** What a close frame says. */
export interface EncodeCloseOptions {
  /** A code allowed on the wire (§7.4.2). Omitted: an empty close body. */
  code?: number;
  /** Truncated to 123 UTF-8 bytes on a code point boundary. Needs a `code`. */
  reason?: string;
}

/**
 * Encodes a close frame (§5.5.1). Throws `RangeError` for a code that may not be sent
 * (1004–1006, 1015, unassigned ones) or a reason without a code: both are the caller's bugs.
 */
export function encodeClose(options: EncodeCloseOptions = {}): Uint8Array {
  const { code, reason = "" } = options;
  if (code === undefined) {
    if (reason !== "") throw new RangeError("a close reason needs a close code");
    return allocateFrame(OPCODE.CLOSE, 0, true);
  }
  if (!isValidWireCloseCode(code)) throw new RangeError(`close code ${code} cannot be sent`);
  const reasonBytes = truncateUtf8(reason, MAX_CLOSE_REASON_BYTES);
  const frame = allocateFrame(OPCODE.CLOSE, 2 + reasonBytes.length, true);
  const body = frame.length - 2 - reasonBytes.length;
  frame[body] = code >> 8;
  frame[body + 1] = code & 0xff;
  frame.set(reasonBytes, body + 2);
  return frame;
}

/** `text` as UTF-8, cut to at most `maxBytes` without splitting a code point. */
export function truncateUtf8(text: string, maxBytes: number): Uint8Array {
  const bytes = encoder.encode(text);
  if (bytes.length <= maxBytes) return bytes;
  let end = maxBytes;
  // Back up over continuation bytes (10xxxxxx) to the start of the cut code point.
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return bytes.slice(0, end);
}

/** The frame's header length for a payload of `length` bytes (§5.2: 7, 7+16 or 7+64 bits). */
function headerLength(length: number): number {
  return length < 126 ? 2 : length < 0x10000 ? 4 : 10;
}

/** Allocates a frame with its header written and room for `length` payload bytes at the end. */
function allocateFrame(opcode: number, length: number, fin: boolean): Uint8Array {
  const header = headerLength(length);
  const frame = new Uint8Array(header + length);
  frame[0] = (fin ? 0x80 : 0) | opcode;
  if (header === 2) frame[1] = length;
  else if (header === 4) {
    frame[1] = 126;
    frame[2] = length >> 8;
    frame[3] = length & 0xff;
  } else {
    frame[1] = 127;
    const view = new DataView(frame.buffer);
    view.setUint32(2, Math.floor(length / 2 ** 32));
    view.setUint32(6, length >>> 0);
  }
  return frame;
}

function checkFrame(opcode: number, length: number, fin: boolean): void {
  if (!isKnownOpcode(opcode)) throw new RangeError(`unknown opcode ${opcode}`);
  if (!isControlOpcode(opcode)) return;
  // §5.5: control frames are never fragmented and carry at most 125 bytes.
  if (!fin) throw new RangeError("a control frame cannot be fragmented");
  if (length > MAX_CONTROL_PAYLOAD) {
    throw new RangeError(`control frame payload of ${length} bytes over ${MAX_CONTROL_PAYLOAD}`);
  }
  if (opcode === OPCODE.CLOSE && length === 1) throw new RangeError("close body of 1 byte");
}

/** The UTF-8 length `TextEncoder` will produce (a lone surrogate becomes U+FFFD, 3 bytes). */
function utf8Length(text: string): number {
  let length = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) continue;
    if (unit < 0x800) length += 1;
    else if (unit >= 0xd800 && unit <= 0xdbff && isLowSurrogate(text.charCodeAt(i + 1))) {
      length += 2; // two units, four bytes
      i++;
    } else length += 2;
  }
  return length;
}

function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}
