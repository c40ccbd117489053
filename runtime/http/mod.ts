/**
 * @module
 * apprun's HTTP/1.1 engine (RFC 9112) on sockets it owns: the socket-free parser and writer,
 * the connection state machine and its exchanges, the limits, and the takeover contract through
 * which a session protocol gets a connection. It knows nothing of sessions or handoff. Other
 * areas import only from here.
 */
export { HttpConnection } from "./connection.ts";
export type { ConnectionContext, ConnState } from "./connection.ts";
export type { FetchHandler, RemoteAddr, ServeHandlerInfo } from "./types.ts";
export { DEFAULT_LIMITS, type HttpLimits } from "./limits.ts";
export { type RequestHead } from "./parser.ts";
export {
  type EventStreamOffer,
  isEventStream,
  requestHeadOf,
  type Takeover,
  type TakeoverFraming,
} from "./takeover.ts";
export { encodeChunk, LAST_CHUNK, toBytes } from "./writer.ts";
