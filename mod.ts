/**
 * @module
 * apprun's library API, for people who embed it: the handler types, and (as they land) the
 * session hooks and WebSocket/SSE helpers. Only a doc header and re-exports.
 */
export type { FetchHandler, RemoteAddr, ServeHandlerInfo } from "./runtime/http/types.ts";
export type { HttpLimits } from "./runtime/http/limits.ts";
export { DEFAULT_LIMITS } from "./runtime/http/limits.ts";
export { AppRunError, type AppRunErrorCode } from "./runtime/errors.ts";
export { APPRUN_VERSION } from "./runtime/version.ts";
