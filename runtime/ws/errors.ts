/**
 * @module
 * The one failure of the WebSocket protocol core: a peer broke RFC 6455 and the connection
 * must be failed (§7.1.7) with the close code carried here. Raising it is the parser's job;
 * sending the close frame and closing the socket is the caller's. Never touches sockets.
 */
import { AppRunError } from "../errors.ts";

/**
 * The close codes a protocol failure maps to: 1002 (framing), 1007 (invalid UTF-8) and
 * 1009 (over a size limit). https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1
 */
export type WsFailureCode = 1002 | 1007 | 1009;

/** A peer that breaks RFC 6455. `closeCode` is the status to fail the connection with. */
export class WsProtocolError extends AppRunError {
  override name = "WsProtocolError";
  readonly closeCode: WsFailureCode;
  constructor(closeCode: WsFailureCode, message: string, options?: ErrorOptions) {
    super("ERR_WS_PROTOCOL", message, options);
    this.closeCode = closeCode;
  }
}
