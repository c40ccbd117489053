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
export type { FetchHandler, HttpLimits, RemoteAddr, ServeHandlerInfo } from "./runtime/http/mod.ts";
export { DEFAULT_LIMITS } from "./runtime/http/mod.ts";
export {
  CLOSE_CODE,
  ServerWebSocket,
  upgradeWebSocket,
  WebSocketUpgradeError,
} from "./runtime/ws/mod.ts";
export type { UpgradeWebSocketOptions, WebSocketUpgrade } from "./runtime/ws/mod.ts";
export { formatEvent, sse, SSEStream } from "./runtime/sse/mod.ts";
export type { SSEEvent, SSEInit } from "./runtime/sse/mod.ts";
export type { SessionHooks } from "./runtime/hooks.ts";
export type { SessionMeta } from "./runtime/sessions/mod.ts";
export { AppRunError, type AppRunErrorCode } from "./runtime/errors.ts";
export { APPRUN_VERSION } from "./runtime/version.ts";
