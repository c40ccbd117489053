/**
 * @module
 * Waiting in tests: `sleep()` for a deliberate pause (pacing, or a window in which something
 * must NOT happen), `waitUntil()` for everything else — it polls an observable condition and
 * throws, naming what it waited for, when the deadline passes; it never returns a boolean for
 * a caller to forget. `withDeadline()` races one promise against a timer and leaves no timer
 * behind. Owns no resource.
 */

/** Resolves after `ms`. Not for synchronisation: wait for the condition with `waitUntil`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Options for {@linkcode waitUntil}. */
export interface WaitOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Poll this often (default 10 ms). */
  everyMs?: number;
}

/**
 * Polls `probe` until it returns a truthy value and returns that value. After `timeoutMs`
 * throws `timed out after N ms waiting for WHAT`; `what` may be a function, called then, to
 * add what was last seen (a log, a count).
 */
export async function waitUntil<T>(
  probe: () => T | Promise<T>,
  what: string | (() => string | Promise<string>),
  { timeoutMs = 10_000, everyMs = 10 }: WaitOptions = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) {
      const text = typeof what === "string" ? what : await what();
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${text}`);
    }
    await sleep(everyMs);
  }
}

/** `promise`'s value, or "timeout" when it has not settled within `ms` (the timer is cleared). */
export async function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), ms));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
