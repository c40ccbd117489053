/**
 * @module
 * A carried connection while the replay of its opening request runs (replay.ts;
 * docs/design.md, "Sessions without hooks"): registered with the server as a session, so a
 * handoff or a stop that comes first finds it; not read from, so what its client sends waits in
 * the kernel until the app has the session back. A handoff carries it on with its record
 * unchanged; a hangup closes it; a stop closes it politely. Owns the socket until `finish()`.
 *
 *   waiting ─replay settled→ done;  waiting ─hangup, stop→ gone;  waiting ─handoff→ detached
 */
import type { Socket, SocketHandler } from "../io/mod.ts";
import type { ConnectionRecord } from "../handoff/mod.ts";
import type { CarriedSession, DetachedSession, SessionEnv } from "./session.ts";

/** What a {@linkcode PendingReplay} does when it stops waiting. */
export interface PendingHooks {
  /** The session, for log lines ("WebSocket http://…/chat"). */
  name: string;
  /** Graceful stop while the handler runs: close politely (WebSocket 1001, SSE end). */
  shutdown(socket: Socket): void;
}

type PendingState = "waiting" | "done" | "gone" | "detached";

/**
 * A carried connection while its replay runs: registered with the server as a session (so a
 * handoff or a stop that comes first finds it), not read from (frames the client sent wait in
 * the kernel until the app has attached). A handoff carries it on with its record unchanged.
 */
export class PendingReplay implements CarriedSession, SocketHandler {
  readonly kind: "ws" | "sse";
  readonly socket: Socket;
  readonly #record: ConnectionRecord;
  readonly #env: SessionEnv;
  readonly #hooks: PendingHooks;
  #state: PendingState = "waiting";

  /** Takes `socket` (reading paused) until {@linkcode finish}. */
  constructor(
    kind: "ws" | "sse",
    socket: Socket,
    record: ConnectionRecord,
    env: SessionEnv,
    hooks: PendingHooks,
  ) {
    this.kind = kind;
    this.socket = socket;
    this.#record = record;
    this.#env = env;
    this.#hooks = hooks;
    socket.setHandler(this);
    socket.pauseReading();
    env.track(this);
  }

  /**
   * The replay settled: returns true when the connection is still here for the protocol to
   * take (its events are the caller's from now on), false when it went or was carried on.
   */
  finish(): boolean {
    if (this.#state !== "waiting") return false;
    this.#state = "done";
    this.#env.untrack(this);
    return true;
  }

  // --- SocketHandler: reading is paused, so only a hangup or error comes here ---

  onReadable(): void {
    // Not asked for while reading is paused.
  }

  onHangup(): void {
    if (this.#state !== "waiting") return;
    this.#state = "gone";
    this.socket.close();
    this.#env.untrack(this);
  }

  // --- CarriedSession ---

  handOff(_deadline: number): Promise<DetachedSession | null> {
    if (this.#state !== "waiting") return Promise.resolve(null);
    this.#state = "detached";
    const fd = this.socket.detach();
    this.#env.untrack(this);
    this.#env.log.info(`${this.#hooks.name} carried on before the app answered its replay`);
    return Promise.resolve({ fd, record: this.#record });
  }

  checkDeadline(_now: number): void {
    // Nothing is written while the replay runs; the replay has its own deadline.
  }

  closeForShutdown(): void {
    if (this.#state !== "waiting") return;
    this.#state = "gone";
    this.#env.untrack(this);
    this.#hooks.shutdown(this.socket);
  }
}
