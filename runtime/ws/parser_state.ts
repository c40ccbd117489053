/**
 * @module
 * The frame parser's handoff state: its versioned plain-data type (CBOR-able: numbers,
 * strings, Uint8Array, plain objects) and the check a restored state must pass before any of
 * it is used. Owns no parsing and never touches sockets; `FrameParser` takes and gives it.
 */
import { AppRunError } from "../errors.ts";
import { isControlOpcode, isKnownOpcode, OPCODE } from "./constants.ts";
import type { WsFailureCode } from "./errors.ts";
import { type HeadFields, readHead } from "./_head.ts";
import { isUtf8State, UTF8_REJECT } from "./utf8.ts";

/**
 * Where the parser is in the byte stream.
 * `head`: the first two header bytes; `length`: the 16- or 64-bit extended length;
 * `mask`: the 4-byte masking key; `payload`: the payload; `closed`: a close frame arrived,
 * later bytes are ignored (§5.5.1); `failed`: the connection must be failed, bytes ignored.
 */
export type ParserPhase = "head" | "length" | "mask" | "payload" | "closed" | "failed";

const PHASES: readonly ParserPhase[] = ["head", "length", "mask", "payload", "closed", "failed"];

/**
 * A parser's whole state as plain data, version 1. The unmasking offset is
 * `payload.byteLength`; the frame's fields (FIN, opcode, length, mask key) are read back
 * from `head`. Limits are configuration, not state: `FrameParser.restore` takes them anew.
 */
export interface FrameParserState {
  v: 1;
  phase: ParserPhase;
  /** The current frame's header bytes received so far (0–14; all of it in `payload`). */
  head: Uint8Array;
  /** The current frame's payload received so far, already unmasked. */
  payload: Uint8Array;
  /** A data message begun and not finished: its opcode, bytes so far and UTF-8 state. */
  message: { opcode: 1 | 2; data: Uint8Array; utf8: number } | null;
  /** Why the parser failed, when `phase` is `failed`. */
  failure: { closeCode: WsFailureCode; message: string } | null;
}

function badState(message: string): AppRunError {
  return new AppRunError("ERR_HANDOFF_STATE", `WebSocket parser state: ${message}`);
}

/**
 * Checks a state from a handoff (already decoded from CBOR) and returns its header's fields
 * (null before two header bytes). Throws `ERR_HANDOFF_STATE` for an unknown version, a
 * wrong shape, or parts that disagree with each other.
 */
export function checkParserState(state: FrameParserState): HeadFields | null {
  checkShape(state);
  const fill = state.head.length;
  const head = fill >= 2 ? readHead(state.head, fill) : null;
  const phase = state.phase;
  // 1. The header bytes fit the phase.
  const isTerminal = phase === "closed" || phase === "failed";
  if (isTerminal && (fill !== 0 || state.message !== null)) throw badState("terminal phase");
  if (phase === "head" && fill >= 2) throw badState("header bytes in phase head");
  if (head !== null) {
    const lengthEnd = 2 + head.lengthBytes;
    const isHeadOk = phase === "length"
      ? head.lengthBytes > 0 && fill < lengthEnd
      : phase === "mask"
      ? fill >= lengthEnd && fill < head.size
      : phase === "payload" && fill === head.size;
    if (!isHeadOk) throw badState(`${fill} header bytes in phase ${phase}`);
    // 2. The header is one the parser would have accepted.
    if (!isKnownOpcode(head.opcode) || (state.head[1] & 0x80) === 0) throw badState("header");
    // 3. A continuation needs a message; a first data frame begins one once its header is
    //    whole (phase payload).
    if (!isControlOpcode(head.opcode)) {
      const isContinuation = head.opcode === OPCODE.CONTINUATION;
      const isMessageDue = isContinuation || phase === "payload";
      if ((state.message !== null) !== isMessageDue) throw badState("message");
      if (!isContinuation && state.message !== null && state.message.opcode !== head.opcode) {
        throw badState("message opcode");
      }
    }
  } else if (phase !== "head" && !isTerminal) {
    throw badState(`${fill} header bytes in phase ${phase}`);
  }
  // 4. Payload bytes only in phase payload, and fewer than the frame holds.
  const payloadFill = state.payload.length;
  if (phase === "payload" ? payloadFill >= head!.length : payloadFill !== 0) {
    throw badState(`${payloadFill} payload bytes`);
  }
  return head;
}

function checkShape(state: FrameParserState): void {
  if (typeof state !== "object" || state === null) throw badState("not an object");
  if (state.v !== 1) throw badState(`unknown version ${String(state.v)}`);
  if (!PHASES.includes(state.phase)) throw badState(`unknown phase ${String(state.phase)}`);
  if (!(state.head instanceof Uint8Array) || state.head.length > 14) throw badState("head");
  if (!(state.payload instanceof Uint8Array)) throw badState("payload");
  const message = state.message;
  if (message !== null) {
    if (typeof message !== "object" || (message.opcode !== 1 && message.opcode !== 2)) {
      throw badState("message opcode");
    }
    if (!(message.data instanceof Uint8Array)) throw badState("message data");
    if (!isUtf8State(message.utf8) || message.utf8 === UTF8_REJECT) throw badState("utf8");
  }
  const failure = state.failure;
  if ((state.phase === "failed") !== (failure !== null)) throw badState("failure");
  if (failure !== null) {
    const code = failure.closeCode;
    if (code !== 1002 && code !== 1007 && code !== 1009) throw badState("failure code");
    if (typeof failure.message !== "string") throw badState("failure message");
  }
}
