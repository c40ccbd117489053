/**
 * @module
 * `apprun serve` started by hand, without a service manager: opens the listeners asked for on
 * the command line, then runs the embedded supervisor (runtime/supervisor) with the worker
 * command of worker/command.ts, so handoff, SIGHUP reloads and `--watch` work on a laptop or in
 * CI exactly as under systemd. Owns the listeners it opened and closes them when the
 * supervisor is done; everything else is the supervisor's.
 */
import { type Listener, openListeners } from "../listen.ts";
import type { Logger } from "../log.ts";
import { ensurePrivateDir, runSupervisor } from "../supervisor/mod.ts";
import { MANAGER_PROTOCOL_ENV } from "../notify.ts";
import { closeFd } from "../sys/mod.ts";
import { DEFAULTS } from "../defaults.ts";
import { workerCommand } from "./command.ts";
import type { ServeOptions } from "./options.ts";
import { controlSocketPath, defaultName } from "./names.ts";

/** Runs the supervisor until it stops. Returns the exit status. */
export async function runSupervised(opts: ServeOptions, log: Logger): Promise<number> {
  const name = opts.name ?? defaultName(opts.handler ?? opts.bin);
  // `--port`/`--unix` are the supervisor's to hold (as a socket unit's); without them the
  // worker listens where the app's code says, and its listeners travel through the store.
  const listeners: Listener[] = openListeners({
    port: opts.port,
    host: opts.host,
    unix: opts.unix,
  });
  const control = opts.control ?? controlSocketPath(name);
  await ensurePrivateDir(control.slice(0, control.lastIndexOf("/")));
  const env = Deno.env.toObject();
  for (const k of MANAGER_PROTOCOL_ENV) delete env[k];
  // systemd ≥ 254 tells the service its store size in $FDSTORE; so do we.
  env.FDSTORE = String(DEFAULTS.fdStoreMax);
  // The worker stops if we die (SIGKILL leaves no chance to stop it ourselves).
  env.APPRUN_SUPERVISOR_PID = String(Deno.pid);
  const worker = workerCommand({ ...opts, port: undefined, host: undefined, unix: [] }, env);
  const watch = opts.isWatch && opts.handler !== undefined
    ? [opts.handler.slice(0, opts.handler.lastIndexOf("/")) || "/"]
    : [];
  log.info(`${name}: control socket ${control}`);
  try {
    return await runSupervisor({
      worker,
      listeners,
      fdStoreMax: DEFAULTS.fdStoreMax,
      stopTimeoutMs: opts.drainTimeoutMs + 10_000,
      startLimit: DEFAULTS.startLimit,
      watch,
      controlSocket: control,
      log,
    });
  } finally {
    for (const l of listeners) closeFd(l.fd);
  }
}
