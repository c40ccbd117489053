/**
 * @module
 * The health gate: after a restart, GET the health URL until it answers 2xx or the timeout
 * passes. Non-2xx answers and connection errors are retried (a service may still be warming
 * up); the last one is reported. Opens only short-lived fetches.
 */
import { describeError } from "../errors.ts";
import { UpgradeError } from "./errors.ts";
import { formatMs } from "./exec.ts";

/** A passed health gate. */
export interface Healthy {
  status: number;
  ms: number;
}

/** Polls `url` every 100 ms. Throws {@linkcode UpgradeError} with the last answer. */
export async function waitHealthy(url: string, timeoutMs: number): Promise<Healthy> {
  const t0 = performance.now();
  const deadline = t0 + timeoutMs;
  let last = "no answer";
  for (;;) {
    const left = deadline - performance.now();
    if (left <= 0) break;
    try {
      const res = await fetch(url, {
        signal: AbortSignal.timeout(Math.max(1, Math.min(left, 5000))),
        headers: { "user-agent": "apprun-upgrade" },
      });
      await res.body?.cancel();
      if (res.status >= 200 && res.status < 300) {
        return { status: res.status, ms: performance.now() - t0 };
      }
      last = `${res.status} ${res.statusText}`.trim();
    } catch (err) {
      // A request cut short by our own deadline says nothing about the service.
      if (performance.now() >= deadline - 1) break;
      last = describeError(err);
    }
    await new Promise((r) =>
      setTimeout(r, Math.min(100, Math.max(0, deadline - performance.now())))
    );
  }
  throw new UpgradeError(
    `health check ${url} failed for ${formatMs(timeoutMs)}: last answer ${last}`,
  );
}
