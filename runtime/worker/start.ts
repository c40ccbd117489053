/**
 * @module
 * The worker's start-up pieces: choosing its listeners (passed ones, our own stored ones, or
 * opened from the command line), dropping stored fds it does not recognise, calling the app's
 * `onListen`, and putting a drained bundle back when start-up fails after reading it.
 */
import { describeError } from "../errors.ts";
import {
  adoptListener,
  type Listener,
  ListenError,
  openListeners,
  type PassedFd,
} from "../listen.ts";
import { encodeState, ownListenerName, writeBundle } from "../handoff/mod.ts";
import type { SortedFds } from "./fds.ts";
import type { Resumed } from "./resume.ts";
import { APPRUN_VERSION } from "../version.ts";
import type { Logger } from "../log.ts";
import type { Notifier } from "../notify.ts";
import { closeFd } from "../sys/mod.ts";

export function takeListeners(
  sorted: SortedFds,
  opts: { port?: number; host?: string; unix: string[] },
): Listener[] {
  const passed = sorted.listeners;
  const fromUnit = passed.filter((p) => !sorted.ownListenerNames.has(p.name));
  if (fromUnit.length > 0 && (opts.port !== undefined || opts.unix.length > 0)) {
    throw new ListenError(
      "ERR_LISTEN_FDS",
      "--port/--unix cannot be used under socket activation (LISTEN_FDS)",
    );
  }
  if (passed.length > 0) {
    return passed.map((p) => {
      const isOwned = sorted.ownListenerNames.has(p.name);
      const l = adoptListener(p, isOwned);
      return isOwned ? { ...l, name: ownListenerName(p.name) } : l;
    });
  }
  const port = opts.port ?? (opts.unix.length > 0 ? undefined : 8000);
  return openListeners({ port, host: opts.host, unix: opts.unix });
}

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

/** `deno serve` calls `onListen({ hostname, port })`: so do we, for the first TCP listener. */
export function callOnListen(
  mod: Record<string, unknown>,
  listeners: Listener[],
  log: Logger,
): void {
  if (typeof mod.onListen !== "function") return;
  const tcp = listeners.find((l) => l.addr.transport === "tcp");
  const addr = tcp?.addr ?? listeners[0]?.addr;
  try {
    (mod.onListen as (a: unknown) => void).call(mod, addr);
  } catch (err) {
    log.error(`onListen failed: ${describeError(err)}`);
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
    const fds = resumed.connections.map((c) => c.fd);
    const state = encodeState({
      apprunVersion: APPRUN_VERSION,
      generation: resumed.generation,
      createdAt: resumed.createdAt ?? Date.now(),
      pid: Deno.pid,
      connections: resumed.connections.map((c) => c.record),
      app: resumed.app,
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
