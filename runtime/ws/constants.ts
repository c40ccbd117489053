/**
 * @module
 * The wire constants of RFC 6455 in one table: opcodes, close codes and which of them may
 * cross the wire, the handshake GUID and version, and apprun's default size limits. Pure
 * data and predicates; never touches sockets.
 */

/** The GUID appended to `Sec-WebSocket-Key` before hashing. https://www.rfc-editor.org/rfc/rfc6455#section-1.3 */
export const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** The only protocol version apprun speaks. https://www.rfc-editor.org/rfc/rfc6455#section-4.1 (item 9) */
export const WS_VERSION = "13";

/** Frame opcodes. https://www.rfc-editor.org/rfc/rfc6455#section-5.2 (0x3–0x7 and 0xB–0xF are reserved) */
export const OPCODE = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;

/** One of the six opcodes RFC 6455 defines. */
export type Opcode = typeof OPCODE[keyof typeof OPCODE];

/** Whether `opcode` is defined by RFC 6455 (anything else fails with 1002, §5.2). */
export function isKnownOpcode(opcode: number): opcode is Opcode {
  return opcode <= 0x2 || (opcode >= 0x8 && opcode <= 0xa);
}

/** Control frames have the high opcode bit set. https://www.rfc-editor.org/rfc/rfc6455#section-5.5 */
export function isControlOpcode(opcode: number): boolean {
  return (opcode & 0x8) !== 0;
}

/**
 * Close status codes.
 * 1000–1011 and 1015: https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1;
 * 1012–1014 are registered in the IANA "WebSocket Close Code Number Registry":
 * https://www.iana.org/assignments/websocket/websocket.xhtml#close-code-number
 */
export const CLOSE_CODE = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  /** Reserved; never on the wire. */
  RESERVED: 1004,
  /** "No status received": a close frame without a body. Never on the wire. */
  NO_STATUS: 1005,
  /** The connection dropped without a close frame. Never on the wire. */
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  MANDATORY_EXTENSION: 1010,
  INTERNAL_ERROR: 1011,
  /** The server is restarting (IANA): what apprun sends when a WebSocket cannot be carried over. */
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  BAD_GATEWAY: 1014,
  /** TLS handshake failure. Never on the wire. */
  TLS_HANDSHAKE: 1015,
} as const;

/**
 * Whether `code` may appear in a close frame, sent or received.
 * https://www.rfc-editor.org/rfc/rfc6455#section-7.4.2: 0–999 are not used; 1000–2999 belong
 * to the protocol and its extensions, and of those only the registered ones are valid (1004
 * is reserved; 1005, 1006 and 1015 MUST NOT be set in a close frame, §7.4.1); 1016–2999 are
 * unassigned; 3000–3999 (registered with IANA by libraries) and 4000–4999 (private use) are
 * allowed. Nothing above 4999 is defined.
 */
export function isValidWireCloseCode(code: number): boolean {
  if (!Number.isInteger(code)) return false;
  if (code >= 1000 && code <= 1014) {
    return code !== CLOSE_CODE.RESERVED && code !== CLOSE_CODE.NO_STATUS &&
      code !== CLOSE_CODE.ABNORMAL;
  }
  return code >= 3000 && code <= 4999;
}

/** Control frame payloads are at most 125 bytes. https://www.rfc-editor.org/rfc/rfc6455#section-5.5 */
export const MAX_CONTROL_PAYLOAD = 125;

/** A close reason fits in a control frame after the 2-byte code. https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1 */
export const MAX_CLOSE_REASON_BYTES = MAX_CONTROL_PAYLOAD - 2;

/**
 * Default cap on one message (all fragments together), 16 MiB. RFC 6455 sets none; §10.4
 * says an implementation with limits MUST protect itself against exceeding them, and 1009
 * (§7.4.1) is the answer to a message too big to process.
 * https://www.rfc-editor.org/rfc/rfc6455#section-10.4
 */
export const DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024;

/** Default cap on one frame's payload: the message cap (a frame is never larger than its message). */
export const DEFAULT_MAX_FRAME_PAYLOAD = DEFAULT_MAX_MESSAGE_SIZE;
