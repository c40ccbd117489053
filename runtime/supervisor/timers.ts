/**
 * @module
 * Two small clocks the supervisor needs, shaped after systemd's: a deadline that
 * EXTEND_TIMEOUT_USEC= can push later but never earlier (service_extend_event_source_timeout),
 * and the start-limit rate limiter (ratelimit_below). Own one timer handle at most; cancel()
 * releases it.
 */

/** A one-shot timer whose deadline can only move later. */
export class Deadline {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #at = 0;
  #onFire: (() => void) | null = null;

  /** Fires `onFire` in `ms` milliseconds, replacing any armed deadline. */
  arm(ms: number, onFire: () => void): void {
    this.cancel();
    this.#at = performance.now() + ms;
    this.#onFire = onFire;
    this.#schedule();
  }

  /** Moves an armed deadline to `at` (a `performance.now()` time) when that is later. */
  extendTo(at: number): void {
    if (this.#onFire === null || at <= this.#at) return;
    this.#at = at;
    this.#schedule();
  }

  get isArmed(): boolean {
    return this.#onFire !== null;
  }

  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#onFire = null;
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    // setTimeout holds at most 2^31-1 ms; longer deadlines re-arm when that span ends.
    const wait = Math.min(Math.max(0, this.#at - performance.now()), 0x7fffffff);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (performance.now() < this.#at - 1) return this.#schedule();
      const fire = this.#onFire;
      this.#onFire = null;
      fire?.();
    }, wait);
  }
}

/**
 * `StartLimitBurst=` starts per `StartLimitIntervalSec=`, counted as ratelimit_below() does:
 * the window opens at the first start and resets once it has passed; the (burst+1)th start
 * inside it is refused. A burst or interval of 0 disables the limit.
 */
export class StartLimiter {
  readonly #burst: number;
  readonly #intervalMs: number;
  #begin = -1;
  #count = 0;

  constructor(burst: number, intervalMs: number) {
    this.#burst = burst;
    this.#intervalMs = intervalMs;
  }

  /** Counts one start; false when it is over the limit. */
  allow(now = performance.now()): boolean {
    if (this.#burst === 0 || this.#intervalMs === 0) return true;
    if (this.#begin < 0 || now - this.#begin > this.#intervalMs) {
      this.#begin = now;
      this.#count = 1;
      return true;
    }
    this.#count++;
    return this.#count <= this.#burst;
  }
}
