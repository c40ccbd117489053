/**
 * @module
 * The close frame body (RFC 6455 §5.5.1): reading a received one (code + UTF-8 reason, each
 * checked) and UTF-8 helpers shared with the encoder. Private to runtime/ws; never touches
 * sockets.
 */
import { CLOSE_CODE, isValidWireCloseCode } from "./constants.ts";
import { WsProtocolError } from "./errors.ts";
import { isValidUtf8 } from "./utf8.ts";

const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** Decodes bytes already validated as UTF-8 (a BOM is kept: it is part of the message). */
export function decodeUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** A received close frame's status and reason. */
export interface ClosePayload {
  /** 1005 (NO_STATUS) when the body was empty (§7.1.5). */
  code: number;
  reason: string;
}

/**
 * Reads a close frame body. https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1: empty, or
 * a 2-byte code then a UTF-8 reason. One byte, or a code not allowed on the wire (§7.4.2),
 * fails with 1002; a reason that is not UTF-8 fails with 1007 (§8.1).
 */
export function parseClosePayload(payload: Uint8Array): ClosePayload {
  if (payload.length === 0) return { code: CLOSE_CODE.NO_STATUS, reason: "" };
  if (payload.length === 1) {
    throw new WsProtocolError(CLOSE_CODE.PROTOCOL_ERROR, "close frame body of 1 byte");
  }
  const code = (payload[0] << 8) | payload[1];
  if (!isValidWireCloseCode(code)) {
    throw new WsProtocolError(CLOSE_CODE.PROTOCOL_ERROR, `invalid close code ${code}`);
  }
  const reason = payload.subarray(2);
  if (!isValidUtf8(reason)) {
    throw new WsProtocolError(CLOSE_CODE.INVALID_PAYLOAD, "close reason is not UTF-8");
  }
  return { code, reason: decodeUtf8(reason) };
}
