/**
 * @module
 * The worker's start-up pieces around a handoff: dropping stored fds it does not recognise,
 * and putting a drained bundle back when start-up fails after reading it.
 */
import { describeError } from "../errors.ts";
import type { PassedFd } from "../listen.ts";
import { encodeState, writeBundle } from "../handoff/mod.ts";
import type { Resumed } from "./resume.ts";
import { APPRUN_VERSION } from "../version.ts";
import type { Logger } from "../log.ts";
import type { Notifier } from "../notify.ts";
import { closeFd } from "../sys/mod.ts";

/** Closes stored fds we do not recognise and removes them from the store (sd_notify(3)). */
export function forgetStrangers(
  strangers: PassedFd[],
  notifier: Notifier | null,
  log: Logger,
): void {
  const names = new Set<string>();
  for (const p of strangers) {
    closeFd(p.fd);
    names.add(p.name);
  }
  for (const name of names) {
    log.warn(`closing stored fds named "${name}": not ours, or from an older handoff`);
    try {
      notifier?.fdstoreRemove(name);
    } catch (err) {
      log.warn(`FDSTOREREMOVE ${name} failed: ${describeError(err)}`);
    }
  }
}

/** Start-up failed after the bundle was read: store a fresh one with the same connections. */
export function putBack(
  resumed: Resumed,
  bundle: { name: string; fd: number },
  notifier: Notifier,
  log: Logger,
): void {
  try {
    const fds = [...resumed.connections.map((c) => c.fd), ...resumed.idle?.fds ?? []];
    const state = encodeState({
      apprunVersion: APPRUN_VERSION,
      generation: resumed.generation,
      createdAt: resumed.createdAt ?? Date.now(),
      pid: Deno.pid,
      connections: resumed.connections.map((c) => c.record),
      app: resumed.app,
      ...(resumed.idle ? { idle: resumed.idle.table } : {}),
    });
    const fresh = writeBundle({ generation: resumed.generation, state, fds });
    notifier.fdstoreRemove(bundle.name);
    notifier.fdstore({ name: bundle.name, fds: [fresh], isPollDisabled: true });
    notifier.barrier(2000);
    closeFd(fresh);
    for (const fd of fds) closeFd(fd);
    log.warn(
      `start-up failed: put ${fds.length} connections back into the store as ${bundle.name}`,
    );
  } catch (err) {
    log.error(`start-up failed and the connections could not be put back: ${describeError(err)}`);
  }
}
