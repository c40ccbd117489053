/**
 * @module
 * `apprun serve` started by hand, without a service manager: opens the listeners asked for on
 * the command line, then runs the embedded supervisor (runtime/supervisor) with the worker
 * command of worker/command.ts, so handoff, SIGHUP reloads and `--watch` work on a laptop or in
 * CI exactly as under systemd. What a person at a terminal needs on top (issue 16): a first
 * worker that fails to load ends it at once (the worker's line, once); a reload is warm
 * (docs/design.md, "Warm reload"): the reload helper (`apprun takeover`, as `ExecReload=`)
 * starts the next worker while the running one serves on, and when the new code does not load
 * nothing was stopped and the reply says why; `--watch` watches the module graph
 * (module_graph.ts); reloads do not spend the start limit; the supervisor stops when whoever
 * started it goes (supervisor/starter.ts); once serving, one line says its pid and how to
 * reload. The workers' `$RUNTIME_DIRECTORY` (where one offers its takeover) is a private
 * directory beside the control socket, removed at the end. Owns the listeners it opened and
 * closes them when the supervisor is done; everything else is the supervisor's.
 */
import { type Listener, openListeners } from "../listen.ts";
import type { Logger } from "../log.ts";
import { ensurePrivateDir, followStarter, runSupervisor } from "../supervisor/mod.ts";
import { MANAGER_PROTOCOL_ENV } from "../notify.ts";
import { closeFd } from "../sys/mod.ts";
import { DEFAULTS } from "../defaults.ts";
import { reloadHelperCommand, workerCommand } from "./command.ts";
import { ModuleGraph } from "./module_graph.ts";
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
  const controlDir = control.slice(0, control.lastIndexOf("/"));
  await ensurePrivateDir(controlDir);
  // RuntimeDirectory=: private to this supervisor, as systemd makes one per service.
  const runtimeDir = await Deno.makeTempDir({ dir: controlDir, prefix: `${name}.run.` });
  const env = Deno.env.toObject();
  for (const k of MANAGER_PROTOCOL_ENV) delete env[k];
  env.RUNTIME_DIRECTORY = runtimeDir;
  // systemd ≥ 254 tells the service its store size in $FDSTORE; so do we.
  env.FDSTORE = String(DEFAULTS.fdStoreMax);
  // The worker stops if we die (SIGKILL leaves no chance to stop it ourselves).
  env.APPRUN_SUPERVISOR_PID = String(Deno.pid);
  const served: ServeOptions = { ...opts, port: undefined, host: undefined, unix: [] };
  const worker = workerCommand(served, env);
  const startTimeoutMs = opts.startTimeoutMs ?? 90_000;
  const stopFollowing = followStarter(log, (line) => {
    log.warn(`${line}: stopping`);
    Deno.kill(Deno.pid, "SIGTERM");
  });
  try {
    return await runSupervisor({
      worker,
      listeners,
      fdStoreMax: DEFAULTS.fdStoreMax,
      startTimeoutMs,
      stopTimeoutMs: opts.drainTimeoutMs + 10_000,
      startLimit: DEFAULTS.startLimit,
      // The first worker's failure is the app's, said once by the worker: no retries.
      isFirstFailureFinal: true,
      // Saves are not crashes: a restart after one does not count toward the start limit.
      isRequestedStartCounted: false,
      // Warm: a save with a typo costs nothing, the running worker serves on.
      reloadCommand: reloadHelperCommand,
      watch: opts.isWatch ? watchList(opts, env, log) : [],
      controlSocket: control,
      log,
    }, () => {
      const reload = reloadCommand(name, control);
      log.info(
        `${name}: supervisor pid ${Deno.pid}; reload with \`${reload}\` or ` +
          `\`kill -HUP ${Deno.pid}\` (control socket ${control})`,
      );
    });
  } finally {
    stopFollowing();
    for (const l of listeners) closeFd(l.fd);
    await Deno.remove(runtimeDir, { recursive: true }).catch(() => {});
  }
}

/** `--watch`: the app's module graph; a compiled apprun (no `deno info`) watches the app file. */
function watchList(
  opts: ServeOptions,
  env: Record<string, string>,
  log: Logger,
): string[] | (() => Promise<string[]>) {
  if (opts.handler === undefined) return [];
  if (Deno.build.standalone || opts.bin !== undefined) return [opts.handler];
  const graph = new ModuleGraph({ app: opts.handler, deno: Deno.execPath(), env, log });
  return () => graph.files();
}

/** How to reload this supervisor, as its first line says it. */
function reloadCommand(name: string, control: string): string {
  // npx puts apprun on PATH for its child only: the person at the shell needs npx again.
  const self = Deno.build.standalone
    ? Deno.execPath()
    : Deno.env.get("npm_command") === "exec"
    ? "npx apprun"
    : "apprun";
  const target = control === controlSocketPath(name) ? `--name ${name}` : `--control ${control}`;
  return `${self} reload ${target}`;
}
