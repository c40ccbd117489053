/**
 * @module
 * Which responses start a session. `upgradeWebSocket` and `sse` mark the Response they return
 * with a {@linkcode SessionStarter}; the server claims it when the engine asks for the
 * response's takeover (http/takeover.ts) and binds it to its {@linkcode SessionEnv}. A response
 * is claimed at most once.
 */
import type { Socket } from "../io/mod.ts";
import type { RequestHead, TakeoverFraming } from "../http/mod.ts";
import type { SessionEnv } from "./session.ts";

/** How a session starts on a connection, once the server binds it to its environment. */
export interface SessionStarter {
  readonly kind: "ws" | "sse";
  /** The head to write (a WebSocket's `101`), or null for the Response's own head (SSE). */
  head(request: RequestHead): string | null;
  /**
   * The session now owns `socket`; `leftover` are bytes read after the request; `listener`
   * names the listener the connection came in on (null when not known: an old record).
   */
  attach(
    socket: Socket,
    leftover: Uint8Array,
    framing: TakeoverFraming,
    env: SessionEnv,
    listener: string | null,
  ): void;
  /** The connection could not be handed over (client gone): release resources. */
  abandon(): void;
}

const STARTERS = new WeakMap<Response, SessionStarter>();

/** Marks `response` as the start of a session (`upgradeWebSocket`, `sse`). */
export function registerSession(response: Response, starter: SessionStarter): void {
  STARTERS.set(response, starter);
}

/** The starter behind `response`, removed from the registry (a response is used once). */
export function claimSession(response: Response): SessionStarter | undefined {
  const starter = STARTERS.get(response);
  if (starter !== undefined) STARTERS.delete(response);
  return starter;
}
