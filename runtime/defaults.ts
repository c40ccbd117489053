/**
 * @module
 * apprun's defaults, in one place: what `apprun serve` does when an option is not given, what
 * its embedded supervisor sets for the service, and what `units/` renders for systemd, so the
 * three never disagree. Plain data: whoever applies a default reads it from here.
 */

/** The defaults. Times in milliseconds. */
export const DEFAULTS = Object.freeze({
  /** TCP port when neither the code, `--port`, nor socket activation says (as `deno serve`). */
  port: 8000,
  /** Address for a port opened without a hostname (as Deno.serve). */
  hostname: "0.0.0.0",
  /** How long requests in flight may run after SIGTERM (`--drain-timeout`). */
  drainTimeoutMs: 10_000,
  /** `FileDescriptorStoreMax=`: the bundle, apprun's own listeners, headroom. */
  fdStoreMax: 16,
  /** Starts allowed per interval (`StartLimitBurst=`/`StartLimitIntervalSec=`): upgrades and
   * `--watch` restart often; systemd's own 5 in 10 s would end the service. */
  startLimit: Object.freeze({ burst: 30, intervalMs: 60_000 }),
  /** `LimitNOFILE=` (soft = hard): connections plus fds in flight at a handoff. */
  limitNoFile: 20_000,
  /** The most event loops `--parallel` runs in one process. */
  maxLoops: 256,
});
