/**
 * @module
 * Server-Sent Events on apprun's engine: `sse()` and the app's `SSEStream`, the session that
 * carries a stream through a handoff, and its resumption in the next process. Other areas
 * import only from here.
 */
export { formatEvent, sse, type SSEEvent, type SSEInit, SSEStream } from "./stream.ts";
export { resumeSse, type SseHooks, type SseProto } from "./session.ts";
