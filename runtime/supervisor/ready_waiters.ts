/**
 * @module
 * Callers waiting for a worker to become ready: the first start (which waits through
 * automatic restarts) and each restart request (which waits for the first worker started
 * after it). Holds promises only; owns no resource.
 */
import type { RestartReply } from "./control.ts";

interface Waiter {
  /** Served by the first READY=1 of a generation above this one. */
  afterGeneration: number;
  /** The first start: not failed by one failed generation, only by the supervisor giving up. */
  isRetrying: boolean;
  resolve(reply: RestartReply): void;
  reject(err: Error): void;
}

/** The waiting list. */
export class ReadyWaiters {
  #waiters: Waiter[] = [];

  /** A promise for the first READY=1 of a generation above `afterGeneration`. */
  add(afterGeneration: number, isRetrying: boolean): Promise<RestartReply> {
    const { promise, resolve, reject } = Promise.withResolvers<RestartReply>();
    this.#waiters.push({ afterGeneration, isRetrying, resolve, reject });
    return promise;
  }

  /** Generation `reply.generation` sent READY=1. */
  ready(reply: RestartReply): void {
    this.#settle((w) => w.afterGeneration < reply.generation, (w) => w.resolve(reply));
  }

  /** `generation` ended before READY=1 (not superseded by a newer restart request). */
  failed(generation: number, err: Error): void {
    this.#settle((w) => !w.isRetrying && w.afterGeneration < generation, (w) => w.reject(err));
  }

  /** The supervisor finished: nobody will be served. */
  rejectAll(err: Error): void {
    this.#settle(() => true, (w) => w.reject(err));
  }

  #settle(pick: (w: Waiter) => boolean, settle: (w: Waiter) => void): void {
    const picked = this.#waiters.filter(pick);
    this.#waiters = this.#waiters.filter((w) => !pick(w));
    for (const w of picked) settle(w);
  }
}
