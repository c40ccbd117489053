/**
 * @module
 * What a long-lived session (a WebSocket, an SSE stream) is to the server, and what the server
 * gives it: the contract between `server.ts` and the protocols in `ws/` and `sse/`. A session
 * owns its socket from the takeover on; the server only tracks it, to carry it through a handoff
 * or close it at a graceful stop (docs/design.md, "Connection and session lifecycles").
 */
import type { EventLoop } from "../io/mod.ts";
import type { Logger } from "../log.ts";
import type { ConnectionRecord } from "../handoff/mod.ts";
import type { FetchHandler } from "../http/mod.ts";

/** A session taken out for the next process, with its record. The caller owns `fd`. */
export interface DetachedSession {
  fd: number;
  record: ConnectionRecord;
}

/** A session the server can carry through a handoff. */
export interface CarriedSession {
  readonly kind: "ws" | "sse";
  /**
   * Stops the session at a clean boundary (outbound data flushed, nothing more read), asks the
   * app for its state and gives up the fd. Returns null when it could not be carried: then it
   * has closed itself politely (WebSocket 1012, SSE stream ended).
   */
  handOff(deadline: number): Promise<DetachedSession | null>;
  /** Graceful stop without handoff: WebSocket close 1001, SSE stream ended. */
  closeForShutdown(): void;
  /**
   * The server's sweep (every 250 ms, `now` from performance.now()): a session whose client
   * has taken none of its queued bytes for `SessionEnv.writeStallMs` cuts it off.
   */
  checkDeadline(now: number): void;
}

/**
 * What the server gives a session. `H` is the app's hooks as the session kind sees them (ws/
 * and sse/ each declare theirs; the server passes all of them).
 */
export interface SessionEnv<H = unknown> {
  readonly loop: EventLoop;
  /** The shared read buffer and its length as a bigint (the fast FFI path). */
  readonly readBuf: Uint8Array;
  readonly readLen: bigint;
  readonly log: Logger;
  readonly hooks: H;
  readonly generation: number;
  /** How long queued output may wait without the client taking a byte (sessions/output.ts). */
  readonly writeStallMs: number;
  track(session: CarriedSession): void;
  untrack(session: CarriedSession): void;
  /**
   * Serves `fd` as an HTTP connection of the listener called `listener` again (an SSE stream
   * ended on a keep-alive connection).
   */
  adoptHttp(fd: number, buffered: Uint8Array, listener: string | null): void;
  /** The app's handler for connections of the listener called `listener` (a replay runs it). */
  handlerFor(listener: string | null): FetchHandler;
}

/** What a resumed session knows about where it came from. */
export interface SessionMeta {
  /** The URL of the request that opened it. */
  url: string;
  /** WebSocket subprotocol, or "". */
  protocol: string;
  /** SSE: the id of the last event sent before the handoff, or "". */
  lastEventId: string;
  /** The generation that opened it. */
  generation: number;
}
