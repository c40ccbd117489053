/**
 * @module
 * Reads a frame header's fields from however many of its bytes have arrived (RFC 6455
 * §5.2). Shared by the parser and the check of a restored parser state; validates nothing.
 * Private to runtime/ws; never touches sockets.
 */

/** What the first bytes of a frame header say. */
export interface HeadFields {
  fin: boolean;
  opcode: number;
  /** Extended length bytes after the first two: 0, 2 or 8. */
  lengthBytes: number;
  /** The payload length, or -1 while its bytes have not all arrived. */
  length: number;
  /** The whole header's size: 2, 4 or 10 bytes, plus the 4-byte masking key. */
  size: number;
}

/** The fields of a header of which `fill` (≥ 2) bytes are in `head`. */
export function readHead(head: Uint8Array, fill: number): HeadFields {
  const len7 = head[1] & 0x7f;
  const lengthBytes = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
  let length = -1;
  if (fill >= 2 + lengthBytes) {
    if (lengthBytes === 0) length = len7;
    else if (lengthBytes === 2) length = (head[2] << 8) | head[3];
    else {
      // Above 2^53 the sum is inexact but still larger than any limit, which is all it is
      // compared with.
      const high = ((head[2] << 24) | (head[3] << 16) | (head[4] << 8) | head[5]) >>> 0;
      const low = ((head[6] << 24) | (head[7] << 16) | (head[8] << 8) | head[9]) >>> 0;
      length = high * 2 ** 32 + low;
    }
  }
  return {
    fin: (head[0] & 0x80) !== 0,
    opcode: head[0] & 0x0f,
    lengthBytes,
    length,
    size: 2 + lengthBytes + 4,
  };
}
