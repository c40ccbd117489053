/**
 * @module
 * apprun's library API, for apps that want more than Deno's own: Server-Sent Events and
 * WebSockets on apprun's engine, and the session hooks that carry their state through an
 * upgrade. An app needs none of it to run under apprun: `Deno.serve`, `Deno.upgradeWebSocket`
 * and a default export work as they do in Deno. Only a doc header and re-exports.
 *
 * @example The three shapes of an app `apprun serve` runs
 * ```ts
 * // 1. A Deno program: Deno.serve in any form Deno documents.
 * Deno.serve({ port: 8080 }, (req) => new Response(`hello ${new URL(req.url).pathname}`));
 *
 * // 2. What `deno serve` takes: a default export with fetch (a Hono app is one).
 * export default { fetch: (req: Request) => new Response("hello") };
 *
 * // 3. A default export that is the handler itself.
 * export default (req: Request) => new Response("hello");
 * ```
 *
 * @example A session that survives an upgrade, with hooks
 * ```ts
 * import { type ServerWebSocket, upgradeWebSocket } from "apprun";
 *
 * export default {
 *   fetch(req: Request) {
 *     const { socket, response } = upgradeWebSocket(req);
 *     socket.onmessage = (e) => socket.send(e.data);
 *     return response;
 *   },
 * };
 * export function onWebSocketHandoff(socket: ServerWebSocket) {
 *   return { room: "lobby" }; // carried to the next process
 * }
 * export function onWebSocketResume(socket: ServerWebSocket, state: { room: string }) {
 *   socket.onmessage = (e) => socket.send(e.data);
 * }
 * ```
 *
 * @example Sessions without hooks: the opening request is replayed after a restart
 * ```ts
 * import { isResumed } from "apprun";
 *
 * const clients = new Set<WebSocket>();
 * Deno.serve((req) => {
 *   const { socket, response } = Deno.upgradeWebSocket(req); // after a restart: the same socket
 *   socket.onopen = () => {
 *     clients.add(socket); // `open` fires again in the new process: the set is rebuilt
 *     if (!isResumed(req)) socket.send("welcome"); // or: req.headers.get("apprun-resumed")
 *   };
 *   socket.onmessage = (e) => clients.forEach((c) => c.send(e.data));
 *   socket.onclose = () => clients.delete(socket);
 *   return response;
 * });
 * ```
 *
 * Session hooks are named exports of the app's main module (or members of its default export):
 * see {@linkcode SessionHooks}. With a hook, the hook resumes the session instead of a replay.
 */
export type { FetchHandler, RemoteAddr, ServeHandlerInfo } from "./runtime/http/mod.ts";
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
export { isResumed, RESUMED_HEADER } from "./runtime/sessions/mod.ts";
export type { SessionMeta } from "./runtime/sessions/mod.ts";
export { APPRUN_VERSION } from "./runtime/version.ts";
