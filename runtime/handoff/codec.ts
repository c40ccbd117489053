/**
 * @module
 * Encodes a {@linkcode HandoffState} to bytes and decodes it back, validating everything before
 * trusting it. Pure: no fds, no I/O (bundle.ts puts the bytes in a sealed memfd).
 *
 * Layout (all integers big-endian):
 *
 * | offset | size | field                                                       |
 * |--------|------|-------------------------------------------------------------|
 * | 0      | 4    | magic `APRS`                                                |
 * | 4      | 2    | format version (1)                                          |
 * | 6      | 2    | flags (none defined in version 1: every bit must be 0)      |
 * | 8      | 4    | payload length                                              |
 * | 12     | 4    | CRC-32C (Castagnoli) of the payload                         |
 * | 16     | …    | payload: one CBOR data item (RFC 8949), the state as a map; |
 * |        |      | each connection record an array (state.ts `WireRecord`)     |
 *
 * Invariant for every future version: bytes 0–5 keep the magic and the version, so an older
 * binary can always refuse a newer state by its version number instead of misreading it.
 *
 * `decodeState` throws only {@linkcode HandoffStateError}, whatever the input.
 *
 * The CBOR library (cbor-x) is loaded on first need, not at import: a worker that starts
 * without a bundle never reads nor writes a state, and the library costs ~20–30 ms to load
 * (its encoder pulls in Deno's node:buffer). `loadStateDecoder()` (resume: the decoder alone,
 * ~5 ms) and `loadStateCodec()` (both) must have settled before the first decode or encode.
 */
import type { Decoder, Encoder } from "../../node_modules/cbor-x/index.d.ts";
import { importDecoder, importEncoder } from "./cbor_x.js";
import { HandoffStateError } from "./errors.ts";
import {
  checkHandoffState,
  HANDOFF_STATE_VERSION,
  type HandoffState,
  MAX_PLAIN_DEPTH,
  toWireRecord,
} from "./state.ts";

let DecoderClass: typeof Decoder | null = null;
let EncoderClass: typeof Encoder | null = null;

/** Loads the CBOR decoder, once: before the first {@linkcode decodeState}. */
export async function loadStateDecoder(): Promise<void> {
  DecoderClass ??= await importDecoder();
}

/** Loads the CBOR encoder and decoder, once: before the first {@linkcode encodeState}. */
export async function loadStateCodec(): Promise<void> {
  await loadStateDecoder();
  EncoderClass ??= await importEncoder();
}

/** `APRS`: the first four bytes of every encoded state. */
export const STATE_MAGIC = new Uint8Array([0x41, 0x50, 0x52, 0x53]);
/** Bytes before the CBOR payload. */
export const STATE_HEADER_SIZE = 16;
const MAX_PAYLOAD = 0xffffffff;

// CRC-32C, reflected polynomial 0x82F63B78 (RFC 3720 §B.4): detects every error burst of up to
// 32 bits, so any single corrupted payload byte.
let crcTable: Uint32Array | null = null;

function makeCrc32cTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

/** CRC-32C of `bytes` (check value: "123456789" → 0xE3069283). */
export function crc32c(bytes: Uint8Array): number {
  const table = crcTable ??= makeCrc32cTable();
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = table[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * Encodes `state` as format version 1. The state is checked first with the decoder's own
 * rules, so whatever encodes decodes to an equal value. Throws {@linkcode HandoffStateError}
 * ("shape") for a state that is not plain data or breaks a field's type or range.
 */
export function encodeState(state: HandoffState): Uint8Array {
  let wire: Record<string, unknown>;
  try {
    wire = { ...state, connections: state.connections.map(toWireRecord) };
    checkHandoffState(wire);
  } catch (err) {
    if (err instanceof HandoffStateError) throw err;
    throw new HandoffStateError("shape", "handoff state cannot be inspected", { cause: err });
  }
  let payload: Uint8Array;
  try {
    // useRecords: false → plain CBOR maps; tagUint8Array: false → plain byte strings.
    if (EncoderClass === null) throw new Error("loadStateCodec() has not settled");
    payload = new EncoderClass({ useRecords: false, tagUint8Array: false }).encode(wire);
  } catch (err) {
    throw new HandoffStateError("shape", "handoff state cannot be encoded as CBOR", { cause: err });
  }
  if (payload.byteLength > MAX_PAYLOAD) {
    throw new HandoffStateError(
      "length",
      `handoff state of ${payload.byteLength} bytes is too big`,
    );
  }
  const out = new Uint8Array(STATE_HEADER_SIZE + payload.byteLength);
  const view = new DataView(out.buffer);
  out.set(STATE_MAGIC, 0);
  view.setUint16(4, HANDOFF_STATE_VERSION);
  view.setUint16(6, 0);
  view.setUint32(8, payload.byteLength);
  view.setUint32(12, crc32c(payload));
  out.set(payload, STATE_HEADER_SIZE);
  return out;
}

/** Options for {@linkcode decodeState}. */
export interface DecodeStateOptions {
  /** Refuse ("generation") a state whose generation is not this one. */
  expectedGeneration?: number;
}

/**
 * Decodes and validates a state: magic, version, flags, length, checksum, CBOR, then every
 * field. Throws {@linkcode HandoffStateError} (and nothing else) with the first problem found.
 */
export function decodeState(bytes: Uint8Array, options: DecodeStateOptions = {}): HandoffState {
  try {
    return decodeStateUnguarded(bytes, options);
  } catch (err) {
    if (err instanceof HandoffStateError) throw err;
    // A bug or a resource limit (stack depth) surfacing from below: still one typed error.
    throw new HandoffStateError("shape", "handoff state could not be decoded", { cause: err });
  }
}

function decodeStateUnguarded(bytes: Uint8Array, options: DecodeStateOptions): HandoffState {
  if (!(bytes instanceof Uint8Array)) {
    throw new HandoffStateError("shape", "handoff state must be a Uint8Array");
  }
  checkHeaderStart(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < STATE_HEADER_SIZE) {
    throw new HandoffStateError(
      "length",
      `handoff state truncated: ${bytes.byteLength} bytes, the header alone is ${STATE_HEADER_SIZE}`,
    );
  }
  const flags = view.getUint16(6);
  if (flags !== 0) {
    throw new HandoffStateError("flags", `handoff state has unknown flags 0x${hex(flags, 4)}`);
  }
  const length = view.getUint32(8);
  const actual = bytes.byteLength - STATE_HEADER_SIZE;
  if (length !== actual) {
    throw new HandoffStateError(
      "length",
      `handoff state payload is ${actual} bytes, its header says ${length}`,
    );
  }
  // A copy: the CBOR decoder caches a DataView on its input, and the result must not alias it.
  const payload = bytes.slice(STATE_HEADER_SIZE);
  const expectedCrc = view.getUint32(12);
  const actualCrc = crc32c(payload);
  if (expectedCrc !== actualCrc) {
    throw new HandoffStateError(
      "checksum",
      `handoff state checksum mismatch: header 0x${hex(expectedCrc, 8)}, payload 0x${
        hex(actualCrc, 8)
      }`,
    );
  }
  const state = checkHandoffState(decodeCbor(payload));
  const expected = options.expectedGeneration;
  if (expected !== undefined && state.generation !== expected) {
    throw new HandoffStateError(
      "generation",
      `handoff state is generation ${state.generation}, expected ${expected}`,
    );
  }
  return state;
}

/** Magic then version: the part of the header every format version shares. */
function checkHeaderStart(bytes: Uint8Array): void {
  const seen = Math.min(bytes.byteLength, STATE_MAGIC.length);
  for (let i = 0; i < seen; i++) {
    if (bytes[i] !== STATE_MAGIC[i]) {
      throw new HandoffStateError(
        "magic",
        `not a handoff state: starts with 0x${hexBytes(bytes.subarray(0, 4))}, expected "APRS"`,
      );
    }
  }
  if (bytes.byteLength < 6) {
    throw new HandoffStateError("length", `handoff state truncated: ${bytes.byteLength} bytes`);
  }
  const version = (bytes[4] << 8) | bytes[5];
  if (version !== HANDOFF_STATE_VERSION) {
    const relation = version > HANDOFF_STATE_VERSION ? "newer than" : "not";
    throw new HandoffStateError(
      "version",
      `handoff state format version ${version} is ${relation} what this apprun reads (version ${HANDOFF_STATE_VERSION})`,
    );
  }
}

function decodeCbor(payload: Uint8Array): unknown {
  checkWellFormed(payload);
  try {
    // A fresh decoder per call: cbor-x keeps per-decoder flags that a failed decode can leave
    // half-changed (tag 259 flips mapsAsObjects).
    if (DecoderClass === null) throw new Error("loadStateDecoder() has not settled");
    return new DecoderClass({ useRecords: false, mapsAsObjects: true }).decode(payload);
  } catch (err) {
    const detail = err instanceof Error ? `: ${err.message}` : "";
    throw new HandoffStateError("cbor", `handoff state payload is not valid CBOR${detail}`, {
      cause: err,
    });
  }
}

/**
 * The major-type-7 items the encoder writes (RFC 8949 §3.3): false, true, null, undefined
 * (20–23) and floats (25–27; cbor-x writes 64-bit ones, shorter ones are harmless).
 */
const ENCODED_SIMPLE = new Set([20, 21, 22, 23, 25, 26, 27]);

/** How deep CBOR items may nest: the state's own levels plus {@linkcode MAX_PLAIN_DEPTH}. */
const MAX_CBOR_DEPTH = MAX_PLAIN_DEPTH + 16;

/**
 * Checks that `bytes` is exactly one well-formed CBOR data item (RFC 8949 Appendix C) of
 * definite lengths only (our encoder never writes indefinite ones, §3.2.2), with no tag or
 * simple value the encoder does not write, in one linear pass, before cbor-x sees it: cbor-x
 * trusts declared sizes (an unterminated indefinite-length map spins up to its 16M-entry
 * limit, seconds of CPU), reads past the end, and gives meaning to tags we never wrote.
 */
function checkWellFormed(bytes: Uint8Array): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.byteLength;
  const fail = (problem: string): never => {
    throw new HandoffStateError("cbor", `handoff state payload is not valid CBOR: ${problem}`);
  };
  if (end === 0) fail("empty payload");
  let pos = 0;
  // Items still to read at each open level (arrays, maps, tags), innermost last.
  const remaining = [1];
  while (remaining.length > 0) {
    const level = remaining.length - 1;
    if (remaining[level] === 0) {
      remaining.pop();
      continue;
    }
    remaining[level]--;
    if (pos >= end) fail(`data ends inside an item at offset ${pos}`);
    const initial = bytes[pos++];
    const major = initial >> 5, info = initial & 0x1f;
    let arg = info;
    if (info >= 24) {
      if (info === 31) fail(`indefinite length at offset ${pos - 1}`);
      if (info > 27) fail(`reserved additional information ${info} at offset ${pos - 1}`);
      const size = 1 << (info - 24);
      if (size > end - pos) fail(`argument at offset ${pos} runs past the end`);
      arg = size === 1
        ? bytes[pos]
        : size === 2
        ? view.getUint16(pos)
        : size === 4
        ? view.getUint32(pos)
        : Number(view.getBigUint64(pos));
      pos += size;
    }
    if (major === 2 || major === 3) {
      if (arg > end - pos) fail(`string of ${arg} bytes at offset ${pos} runs past the end`);
      pos += arg;
    } else if (major === 6 && !((arg === 2 || arg === 3) && bytes[pos] >> 5 === 2)) {
      // The encoder writes one kind of tag: a bignum over a byte string (RFC 8949 §3.4.3).
      // cbor-x acts on many others (shared references, records, typed arrays, Map, Set…):
      // none may reach it.
      fail(`tag ${arg} at offset ${pos - 1 - (info >= 24 ? 1 << (info - 24) : 0)}`);
    } else if (major === 7 && !ENCODED_SIMPLE.has(info)) {
      fail(`simple value or float form 0x${hex(initial, 2)} at offset ${pos - 1}`);
    } else if (major === 4 || major === 5 || major === 6) {
      const count = major === 4 ? arg : major === 5 ? arg * 2 : 1;
      // Every item is at least one byte: a count beyond what is left cannot be honest.
      if (count > end - pos) fail(`count ${arg} at offset ${pos} exceeds the data`);
      if (remaining.length > MAX_CBOR_DEPTH) fail(`nested deeper than ${MAX_CBOR_DEPTH}`);
      remaining.push(count);
    }
  }
  if (pos !== end) fail(`${end - pos} bytes after the data item`);
}

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, "0");
}

function hexBytes(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => hex(b, 2)).join("");
}
