/**
 * @module
 * `Deno.upgradeWebSocket` on apprun's engine: Deno's own works only on a request from Deno's
 * server, so an app (or Hono's `hono/deno` adapter, which calls it at request time) gets
 * apprun's `upgradeWebSocket` under Deno's name — the same TypeErrors for the requests Deno
 * refuses, a socket carried through handoffs, and for a request apprun replays after a restart
 * the carried socket itself. Deno's `idleTimeout` option (pings Deno sends) is not honoured.
 */
import { upgradeWebSocket, type WebSocketUpgrade } from "../ws/mod.ts";

/** Deno's options (`Deno.UpgradeWebSocketOptions`). */
interface DenoUpgradeOptions {
  protocol?: string;
  idleTimeout?: number;
}

/** Deno's signature, served by apprun. */
export function denoUpgradeWebSocket(
  request: Request,
  options: DenoUpgradeOptions = {},
): WebSocketUpgrade {
  return upgradeWebSocket(request, options.protocol ? { protocol: options.protocol } : {});
}

/** Replaces `Deno.upgradeWebSocket` (a configurable property of `Deno`) with apprun's. */
export function installDenoUpgradeWebSocket(): void {
  Object.defineProperty(Deno, "upgradeWebSocket", {
    value: denoUpgradeWebSocket,
    writable: true,
    configurable: true,
  });
}
