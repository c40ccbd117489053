/**
 * @module
 * Deno's own server API on apprun's engine, so an app written for `deno run` runs unchanged:
 * `Deno.serve` (served by the worker's {@linkcode ServeHost}) and `Deno.upgradeWebSocket`.
 * Installed by the worker before the app's main module runs. Other areas import only from here.
 */
export {
  AppServer,
  type BoundServe,
  installDenoServe,
  type ListenRequest,
  readServeArgs,
  type ServeAddr,
  type ServeCall,
  type ServeHost,
} from "./serve.ts";
export { denoUpgradeWebSocket, installDenoUpgradeWebSocket } from "./websocket.ts";
