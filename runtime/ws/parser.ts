/**
 * @module
 * The incremental RFC 6455 frame parser, server role: client bytes in, whole messages and
 * control frames out, for any split of the stream. Owns frame decoding, unmasking,
 * reassembly of fragments, incremental UTF-8 validation of text, the size limits, and a
 * snapshot of all of it as plain CBOR-able data so a handoff can resume mid-frame. Never
 * touches sockets and never answers: pongs, close echoes and failing the connection with
 * the close code it reports are the caller's.
 */
import {
  CLOSE_CODE,
  DEFAULT_MAX_FRAME_PAYLOAD,
  DEFAULT_MAX_MESSAGE_SIZE,
  isControlOpcode,
  isKnownOpcode,
  MAX_CONTROL_PAYLOAD,
  OPCODE,
} from "./constants.ts";
import { WsProtocolError } from "./errors.ts";
import { UTF8_ACCEPT, UTF8_REJECT, type Utf8State, utf8Step } from "./utf8.ts";
import { decodeUtf8, parseClosePayload } from "./_close.ts";
import { readHead } from "./_head.ts";
import { checkedMove, type MoveTable } from "../state_machine.ts";
import { checkParserState, type FrameParserState, type ParserPhase } from "./parser_state.ts";

export type { FrameParserState, ParserPhase };

/** The allowed moves; {@link FrameParser} changes phase only through this table. */
const MOVES: MoveTable<ParserPhase> = {
  head: ["length", "mask", "failed"],
  length: ["mask", "failed"],
  mask: ["payload", "head", "closed", "failed"], // an empty payload ends the frame here
  payload: ["head", "closed", "failed"],
  closed: [],
  failed: [],
};

/** One thing the parser found. Data never aliases the bytes given to `push`. */
export type WsEvent =
  | { kind: "text"; data: string }
  | { kind: "binary"; data: Uint8Array }
  | { kind: "ping"; data: Uint8Array }
  | { kind: "pong"; data: Uint8Array }
  /** `code` is 1005 (NO_STATUS) for an empty close frame: never echo 1005 on the wire. */
  | { kind: "close"; code: number; reason: string }
  /** Fail the connection with `error.closeCode` (§7.1.7). Always the last event. */
  | { kind: "fail"; error: WsProtocolError };

/** Limits, checked when a frame's header is complete, before any of its payload is kept. */
export interface FrameParserOptions {
  /** Largest data frame payload accepted, in bytes. Default {@link DEFAULT_MAX_FRAME_PAYLOAD}. */
  maxFramePayload?: number;
  /** Largest message (fragments together) accepted, in bytes. Default 16 MiB. */
  maxMessageSize?: number;
}

const EMPTY = new Uint8Array(0);
/**
 * A frame's payload buffer starts at most this big and doubles as bytes arrive (capped at the
 * declared length): a header alone, claiming 16 MiB, must not make us allocate 16 MiB.
 */
const FIRST_PAYLOAD_BYTES = 16 * 1024;

/** Parses the frames a client sends to a server. One per connection. */
export class FrameParser {
  #phase: ParserPhase;
  #maxFramePayload: number;
  #maxMessageSize: number;
  // The current frame: header bytes, fields read from them, payload so far.
  #head = new Uint8Array(14);
  #headFill = 0;
  #lengthBytes = 0; // 0, 2 or 8 extended length bytes after the first two
  #fin = false;
  #opcode = 0;
  #length = 0;
  #payload: Uint8Array = EMPTY;
  #payloadFill = 0;
  // The data message in progress (#messageOpcode 0: none).
  #messageOpcode = 0;
  #fragments: Uint8Array[] = [];
  #messageSize = 0;
  #utf8: Utf8State = UTF8_ACCEPT;
  #failure: WsProtocolError | null = null;

  constructor(options: FrameParserOptions = {}) {
    this.#maxFramePayload = checkLimit("maxFramePayload", options.maxFramePayload) ??
      DEFAULT_MAX_FRAME_PAYLOAD;
    this.#maxMessageSize = checkLimit("maxMessageSize", options.maxMessageSize) ??
      DEFAULT_MAX_MESSAGE_SIZE;
    this.#phase = "head";
  }

  /** The current phase. */
  get phase(): ParserPhase {
    return this.#phase;
  }

  /** Between frames with no message in progress: nothing would be lost by starting over. */
  get isIdle(): boolean {
    return this.#phase === "head" && this.#headFill === 0 && this.#messageOpcode === 0;
  }

  /**
   * Feeds the next bytes of the stream (any split) and returns what they completed, in
   * order. After a `close` or `fail` event later bytes are ignored. `bytes` is not kept.
   */
  push(bytes: Uint8Array): WsEvent[] {
    const events: WsEvent[] = [];
    let at = 0;
    try {
      while (at < bytes.length && this.#phase !== "closed" && this.#phase !== "failed") {
        at = this.#phase === "payload"
          ? this.#readPayload(bytes, at, events)
          : this.#readHead(bytes, at, events);
      }
    } catch (err) {
      if (!(err instanceof WsProtocolError)) throw err;
      this.#fail(err);
      events.push({ kind: "fail", error: err });
    }
    return events;
  }

  #moveTo(next: ParserPhase): void {
    this.#phase = checkedMove(MOVES, this.#phase, next, "the WebSocket frame parser");
  }

  #fail(error: WsProtocolError): void {
    this.#moveTo("failed");
    this.#failure = error;
    this.#discard();
  }

  /** Drops the frame and message in progress: after close or failure nothing more is read. */
  #discard(): void {
    this.#headFill = 0;
    this.#payload = EMPTY;
    this.#payloadFill = 0;
    this.#beginMessage(0);
  }

  /** Copies header bytes until the current phase has what it needs, then acts on them. */
  #readHead(bytes: Uint8Array, start: number, events: WsEvent[]): number {
    const need = this.#headNeed();
    const head = this.#head;
    let at = start;
    let fill = this.#headFill;
    while (fill < need && at < bytes.length) head[fill++] = bytes[at++];
    this.#headFill = fill;
    if (fill < need) return at;
    if (this.#phase === "head") this.#onBaseHeader();
    else if (this.#phase === "length") this.#onExtendedLength();
    else this.#onMaskKey(events);
    return at;
  }

  /** How many header bytes the current phase completes at. */
  #headNeed(): number {
    if (this.#phase === "head") return 2;
    if (this.#phase === "length") return 2 + this.#lengthBytes;
    return 6 + this.#lengthBytes;
  }

  /** Checks the first two header bytes (RFC 6455 §5.2), failing as early as the bytes allow. */
  #onBaseHeader(): void {
    const b0 = this.#head[0];
    const b1 = this.#head[1];
    const opcode = b0 & 0x0f;
    const len7 = b1 & 0x7f;
    // §5.2: RSV1–3 MUST be 0 unless an extension defines them; apprun negotiates none.
    if ((b0 & 0x70) !== 0) throw protocolError("RSV bits set without a negotiated extension");
    // §5.2: an unknown opcode MUST fail the connection.
    if (!isKnownOpcode(opcode)) throw protocolError(`reserved opcode 0x${opcode.toString(16)}`);
    // §5.1: a server MUST close the connection on an unmasked client frame (1002, §7.4.1).
    if ((b1 & 0x80) === 0) throw protocolError("client frame is not masked");
    if (isControlOpcode(opcode)) {
      // §5.5: control frames MUST NOT be fragmented and carry at most 125 bytes.
      if ((b0 & 0x80) === 0) throw protocolError("fragmented control frame");
      if (len7 > MAX_CONTROL_PAYLOAD) throw protocolError("control frame payload over 125 bytes");
    } else if (opcode === OPCODE.CONTINUATION) {
      // §5.4: a continuation frame belongs to a message begun by a non-final data frame.
      if (this.#messageOpcode === 0) throw protocolError("continuation frame with no message");
    } else if (this.#messageOpcode !== 0) {
      // §5.4: fragments of one message are not interleaved with another message.
      throw protocolError("new data frame inside a fragmented message");
    }
    this.#loadHead();
    this.#moveTo(this.#lengthBytes === 0 ? "mask" : "length");
  }

  #onExtendedLength(): void {
    // §5.2: the 64-bit length's most significant bit MUST be 0. A non-minimal length (e.g.
    // 126 + 0x007C) is accepted: "the minimal number of bytes MUST be used to encode the
    // length" binds the sender, and §5.2 names no failure for it (unlike RSV and opcodes).
    if (this.#lengthBytes === 8 && (this.#head[2] & 0x80) !== 0) {
      throw protocolError("64-bit payload length with the most significant bit set");
    }
    this.#loadHead();
    this.#moveTo("mask");
  }

  /** The header is complete: check the limits, then allocate the payload. */
  #onMaskKey(events: WsEvent[]): void {
    const length = this.#length;
    const opcode = this.#opcode;
    if (!isControlOpcode(opcode)) {
      // §10.4: limits on frame and message size, answered with 1009 (§7.4.1), before any
      // allocation. A message's size counts every fragment so far.
      const messageSize = opcode === OPCODE.CONTINUATION ? this.#messageSize : 0;
      if (length > this.#maxFramePayload) {
        throw tooBigError(`frame payload of ${length} bytes over ${this.#maxFramePayload}`);
      }
      if (messageSize + length > this.#maxMessageSize) {
        throw tooBigError(`message over ${this.#maxMessageSize} bytes`);
      }
      if (opcode !== OPCODE.CONTINUATION) this.#beginMessage(opcode);
    }
    this.#payload = length === 0 ? EMPTY : new Uint8Array(Math.min(length, FIRST_PAYLOAD_BYTES));
    this.#payloadFill = 0;
    if (length === 0) this.#endFrame(events);
    else this.#moveTo("payload");
  }

  #beginMessage(opcode: number): void {
    this.#messageOpcode = opcode;
    this.#fragments = [];
    this.#messageSize = 0;
    this.#utf8 = UTF8_ACCEPT;
  }

  /** Reads the frame fields from the header bytes received so far (also used by restore). */
  #loadHead(): void {
    const fields = readHead(this.#head, this.#headFill);
    this.#fin = fields.fin;
    this.#opcode = fields.opcode;
    this.#lengthBytes = fields.lengthBytes;
    this.#length = fields.length;
  }

  /** Unmasks payload bytes into the frame's buffer (§5.3); validates text as it goes. */
  #readPayload(bytes: Uint8Array, at: number, events: WsEvent[]): number {
    const start = this.#payloadFill;
    const count = Math.min(this.#length - start, bytes.length - at);
    if (start + count > this.#payload.length) this.#growPayload(start + count);
    const payload = this.#payload;
    const head = this.#head;
    const maskAt = 2 + this.#lengthBytes;
    for (let i = 0; i < count; i++) {
      const j = start + i;
      payload[j] = bytes[at + i] ^ head[maskAt + (j & 3)];
    }
    this.#payloadFill = start + count;
    if (this.#messageOpcode === OPCODE.TEXT && !isControlOpcode(this.#opcode)) {
      // §8.1: invalid UTF-8 fails the connection (1007); checked per piece, so a sequence
      // that can no longer be valid fails before the rest of the message arrives.
      this.#utf8 = utf8Step(this.#utf8, payload, start, start + count);
      if (this.#utf8 === UTF8_REJECT) throw invalidUtf8Error("text message is not UTF-8");
    }
    if (this.#payloadFill === this.#length) this.#endFrame(events);
    return at + count;
  }

  /** Makes room for `need` payload bytes: doubling, never past the frame's length. */
  #growPayload(need: number): void {
    const size = Math.min(this.#length, Math.max(need, this.#payload.length * 2));
    const grown = new Uint8Array(size);
    grown.set(this.#payload.subarray(0, this.#payloadFill));
    this.#payload = grown;
  }

  /** A frame is complete: deliver it, or keep it as a fragment. */
  #endFrame(events: WsEvent[]): void {
    const opcode = this.#opcode;
    const payload = this.#payload;
    this.#headFill = 0;
    this.#payload = EMPTY;
    this.#payloadFill = 0;
    if (isControlOpcode(opcode)) {
      this.#endControlFrame(opcode, payload, events);
      return;
    }
    this.#fragments.push(payload);
    this.#messageSize += payload.length;
    if (this.#fin) this.#endMessage(events);
    this.#moveTo("head");
  }

  #endMessage(events: WsEvent[]): void {
    const data = concat(this.#fragments, this.#messageSize);
    const isText = this.#messageOpcode === OPCODE.TEXT;
    const utf8 = this.#utf8;
    this.#beginMessage(0);
    if (isText) {
      // §8.1: a text message that ends inside a UTF-8 sequence is invalid.
      if (utf8 !== UTF8_ACCEPT) throw invalidUtf8Error("text message ends inside a sequence");
      events.push({ kind: "text", data: decodeUtf8(data) });
    } else {
      events.push({ kind: "binary", data });
    }
  }

  #endControlFrame(opcode: number, payload: Uint8Array, events: WsEvent[]): void {
    if (opcode === OPCODE.PING) events.push({ kind: "ping", data: payload });
    else if (opcode === OPCODE.PONG) events.push({ kind: "pong", data: payload });
    else {
      const { code, reason } = parseClosePayload(payload);
      events.push({ kind: "close", code, reason });
      // §5.5.1: after a close frame the peer sends nothing more; anything later is ignored,
      // and so is a fragmented message the close interrupted.
      this.#moveTo("closed");
      this.#discard();
      return;
    }
    this.#moveTo("head");
  }

  /** The parser's whole state as plain data; the parser itself is unchanged. */
  snapshot(): FrameParserState {
    const isPayload = this.#phase === "payload";
    return {
      v: 1,
      phase: this.#phase,
      head: this.#head.slice(0, this.#headFill),
      payload: isPayload ? this.#payload.slice(0, this.#payloadFill) : new Uint8Array(0),
      message: this.#messageOpcode === 0 ? null : {
        opcode: this.#messageOpcode as 1 | 2,
        data: concat(this.#fragments, this.#messageSize),
        utf8: this.#utf8,
      },
      failure: this.#failure === null
        ? null
        : { closeCode: this.#failure.closeCode, message: this.#failure.message },
    };
  }

  /**
   * A parser that continues exactly where `snapshot()` stopped. The state is checked first:
   * a malformed or unknown-version state throws `ERR_HANDOFF_STATE`. Buffers are copied.
   */
  static restore(state: FrameParserState, options: FrameParserOptions = {}): FrameParser {
    const head = checkParserState(state);
    const parser = new FrameParser(options);
    parser.#phase = state.phase;
    parser.#head.set(state.head);
    parser.#headFill = state.head.length;
    if (head !== null) parser.#loadHead();
    if (state.message !== null) {
      parser.#messageOpcode = state.message.opcode;
      parser.#fragments = state.message.data.length > 0 ? [state.message.data.slice()] : [];
      parser.#messageSize = state.message.data.length;
      parser.#utf8 = state.message.utf8;
    }
    if (state.phase === "payload") {
      const size = Math.min(parser.#length, Math.max(state.payload.length, FIRST_PAYLOAD_BYTES));
      parser.#payload = new Uint8Array(size);
      parser.#payload.set(state.payload);
      parser.#payloadFill = state.payload.length;
    }
    if (state.failure !== null) {
      parser.#failure = new WsProtocolError(state.failure.closeCode, state.failure.message);
    }
    return parser;
  }
}

function protocolError(message: string): WsProtocolError {
  return new WsProtocolError(CLOSE_CODE.PROTOCOL_ERROR, message);
}

function tooBigError(message: string): WsProtocolError {
  return new WsProtocolError(CLOSE_CODE.MESSAGE_TOO_BIG, message);
}

function invalidUtf8Error(message: string): WsProtocolError {
  return new WsProtocolError(CLOSE_CODE.INVALID_PAYLOAD, message);
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function checkLimit(name: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
  }
  return value;
}
