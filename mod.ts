/**
 * @module
 * apprun's library API, for handlers and for people who embed it: the handler types,
 * WebSockets and Server-Sent Events on apprun's engine, and the session hooks that carry their
 * state through an upgrade. Only a doc header and re-exports.
 *
 * Session hooks are named exports of the handler module (or members of its default export):
 * `onWebSocketHandoff(socket) → state`, `onWebSocketResume(socket, state, meta)`,
 * `onSSEHandoff(stream) → state`, `onSSEResume(stream, state, meta)`, `onAppHandoff() → state`,
 * `onAppResume(state)`. See {@linkcode SessionHooks}.
 */
export type { FetchHandler, RemoteAddr, ServeHandlerInfo } from "./runtime/http/types.ts";
export type { HttpLimits } from "./runtime/http/limits.ts";
export { DEFAULT_LIMITS } from "./runtime/http/limits.ts";
export {
  CLOSE_CODE,
  ServerWebSocket,
  upgradeWebSocket,
  WebSocketUpgradeError,
} from "./runtime/ws/mod.ts";
export type { UpgradeWebSocketOptions, WebSocketUpgrade } from "./runtime/ws/mod.ts";
export { formatEvent, sse, SSEStream } from "./runtime/sse.ts";
export type { SSEEvent, SSEInit } from "./runtime/sse.ts";
export type { SessionHooks, SessionMeta } from "./runtime/sessions.ts";
export { AppRunError, type AppRunErrorCode } from "./runtime/errors.ts";
export { APPRUN_VERSION } from "./runtime/version.ts";
