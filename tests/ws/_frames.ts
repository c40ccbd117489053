/**
 * @module
 * Test helpers for the WebSocket core: builds client frames byte by byte (masked or not,
 * any RSV bits, any length encoding), feeds parsers in chosen pieces, and turns events into
 * plain values for deep comparison. Never touches sockets.
 */
import { FrameParser, type FrameParserOptions, type WsEvent } from "../../runtime/ws/parser.ts";

/** A fixed masking key, so expected bytes can be written down. */
export const KEY = new Uint8Array([0x37, 0xfa, 0x21, 0x3d]);

/** One client frame to build. */
export interface ClientFrameOptions {
  opcode: number;
  payload?: Uint8Array | string;
  /** Default true. */
  fin?: boolean;
  /** RSV1–3 as bits 0b100, 0b010, 0b001. Default 0. */
  rsv?: number;
  /** The masking key; null sends the frame unmasked. Default {@link KEY}. */
  mask?: Uint8Array | null;
  /** Force a length encoding (7, 16 or 64 bits) instead of the minimal one. */
  lengthBits?: 7 | 16 | 64;
  /** Claim this length instead of the payload's (for limit tests). */
  claimedLength?: number | bigint;
}

/** The bytes of one frame as a client would send it. */
export function clientFrame(options: ClientFrameOptions): Uint8Array {
  const payload = typeof options.payload === "string"
    ? new TextEncoder().encode(options.payload)
    : options.payload ?? new Uint8Array(0);
  const mask = options.mask === undefined ? KEY : options.mask;
  const length = BigInt(options.claimedLength ?? payload.length);
  const bits = options.lengthBits ?? (length < 126n ? 7 : length < 0x10000n ? 16 : 64);
  const head: number[] = [
    ((options.fin ?? true) ? 0x80 : 0) | ((options.rsv ?? 0) << 4) |
    options.opcode,
  ];
  const maskBit = mask === null ? 0 : 0x80;
  if (bits === 7) head.push(maskBit | Number(length));
  else if (bits === 16) head.push(maskBit | 126, Number(length >> 8n), Number(length & 0xffn));
  else {
    head.push(maskBit | 127);
    for (let shift = 56n; shift >= 0n; shift -= 8n) head.push(Number((length >> shift) & 0xffn));
  }
  if (mask !== null) head.push(...mask);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  for (let i = 0; i < payload.length; i++) {
    out[head.length + i] = mask === null ? payload[i] : payload[i] ^ mask[i & 3];
  }
  return out;
}

/** Turns a server frame (unmasked) into the same frame masked with `key`, as a client sends it. */
export function maskServerFrame(frame: Uint8Array, key: Uint8Array = KEY): Uint8Array {
  const len7 = frame[1] & 0x7f;
  const header = len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
  const out = new Uint8Array(frame.length + 4);
  out.set(frame.subarray(0, header));
  out[1] |= 0x80;
  out.set(key, header);
  for (let i = header; i < frame.length; i++) {
    out[i + 4] = frame[i] ^ key[(i - header) & 3];
  }
  return out;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** An event as a plain value: failures become their close code and message. */
export type PlainEvent =
  | Exclude<WsEvent, { kind: "fail" }>
  | { kind: "fail"; closeCode: number; message: string };

export function plain(events: WsEvent[]): PlainEvent[] {
  return events.map((event) =>
    event.kind === "fail"
      ? { kind: "fail", closeCode: event.error.closeCode, message: event.error.message }
      : event
  );
}

/** Feeds `bytes` to a new parser in pieces ending at `cuts`, and returns every event. */
export function parseInPieces(
  bytes: Uint8Array,
  cuts: number[] = [],
  options?: FrameParserOptions,
): PlainEvent[] {
  const parser = new FrameParser(options);
  const events: WsEvent[] = [];
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    events.push(...parser.push(bytes.subarray(at, cut)));
    at = cut;
  }
  return plain(events);
}

/** Feeds `bytes` to a new parser all at once. */
export function parse(bytes: Uint8Array, options?: FrameParserOptions): PlainEvent[] {
  return parseInPieces(bytes, [], options);
}

/** A seeded PRNG (mulberry32), so random splits are the same on every run. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return function next(): number {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

export const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);
export const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
