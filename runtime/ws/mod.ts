/**
 * @module
 * apprun's WebSocket server (RFC 6455) on its own engine: `upgradeWebSocket`, the socket type,
 * and the socket-free protocol pieces beneath them. Other areas import only from here.
 */
export { upgradeWebSocket, WebSocketUpgradeError } from "./upgrade.ts";
export { resumeWebSocket } from "./resume.ts";
export type { UpgradeWebSocketOptions, WebSocketUpgrade } from "./upgrade.ts";
export { ServerWebSocket } from "./socket.ts";
export type { WsHooks } from "./session.ts";
export { CLOSE_CODE } from "./constants.ts";
export { encodeClose } from "./encoder.ts";
