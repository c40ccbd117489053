/**
 * @module
 * Server-Sent Events on apprun's engine: `sse()` and the app's `SSEStream`, a streamed
 * `text/event-stream` Response body run as a session, the session that carries either through
 * a handoff, and its resumption in the next process. Other areas import only from here.
 */
export { formatEvent, sse, type SSEEvent, type SSEInit, SSEStream } from "./stream.ts";
export { type SseHooks, type SseProto } from "./session.ts";
export { resumeSse } from "./resume.ts";
export { eventStreamStarter } from "./body.ts";
