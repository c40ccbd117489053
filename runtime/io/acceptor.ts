/**
 * @module
 * Accepts connections on one listening socket for the event loop. Accepts a bounded batch per
 * readiness report (fairness with open connections); when the process is out of fds it stops
 * watching the listener for a moment instead of spinning (the kernel keeps the backlog).
 * Registers with EPOLLEXCLUSIVE, so when several event loops of one process accept on the same
 * listener, a new connection wakes one of them (no thundering herd). Does not own the listener fd; gives each accepted fd to `onConnection`, which owns it, with
 * the peer's raw sockaddr as accept4(2) reported it.
 */
import { accept, acceptedPeer, EPOLLEXCLUSIVE, EPOLLIN, setNoDelay } from "../sys/mod.ts";
import type { EventLoop, IoHandler } from "./loop.ts";
import type { Logger } from "../log.ts";

const BATCH = 128;
const FD_LIMIT_PAUSE_MS = 200;

/** Options for {@linkcode Acceptor}. */
export interface AcceptorOptions {
  loop: EventLoop;
  fd: number;
  isTcp: boolean;
  log: Logger;
  onConnection(fd: number, peer: Uint8Array): void;
}

/** Accepts on one listener while started. */
export class Acceptor implements IoHandler {
  readonly fd: number;
  readonly #opts: AcceptorOptions;
  #isWatching = false;
  #pauseTimer: ReturnType<typeof setTimeout> | undefined;
  #hasWarned = false;

  constructor(opts: AcceptorOptions) {
    this.fd = opts.fd;
    this.#opts = opts;
  }

  start(): void {
    if (this.#isWatching) return;
    // Several loops (worker/loops.ts) may watch one listener: a connection wakes one of them.
    this.#opts.loop.add(this.fd, EPOLLIN | EPOLLEXCLUSIVE, this);
    this.#isWatching = true;
  }

  /** Stops accepting (the listener stays open; pending connections wait in its backlog). */
  stop(): void {
    clearTimeout(this.#pauseTimer);
    this.#pauseTimer = undefined;
    if (!this.#isWatching) return;
    this.#opts.loop.remove(this.fd);
    this.#isWatching = false;
  }

  onEvent(): void {
    const { onConnection, isTcp } = this.#opts;
    for (let i = 0; i < BATCH; i++) {
      const r = accept(this.fd);
      if (typeof r === "number") {
        if (isTcp) setNoDelay(r);
        onConnection(r, acceptedPeer());
        continue;
      }
      if (r === "again") return;
      if (r === "limit") return this.#pauseForFds();
      // "aborted": the peer left before we took it; try the next one.
    }
  }

  #pauseForFds(): void {
    if (!this.#hasWarned) {
      this.#opts.log.warn(
        `out of file descriptors: pausing accept on fd ${this.fd} (raise LimitNOFILE=)`,
      );
      this.#hasWarned = true;
    }
    this.stop();
    this.#pauseTimer = setTimeout(() => {
      this.#pauseTimer = undefined;
      this.start();
    }, FD_LIMIT_PAUSE_MS);
  }
}
