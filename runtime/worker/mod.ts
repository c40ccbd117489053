/**
 * @module
 * The worker: the apprun process that serves (under systemd, a socket activator, or apprun's
 * own supervisor), and how one is started: its command line (command.ts), its options, and the
 * supervised launch for `apprun serve` started by hand. Other areas import only from here.
 *
 * `startWorker`, `runSupervised` and `runReloadHelper` load their modules when called, not with this one: the
 * CLI imports this to build a worker's command line and exec it (what every start under a
 * manager does), and the server or the supervisor behind those two would cost that exec their
 * whole module graph (~100 ms of a start, measured).
 */
import type { Logger } from "../log.ts";
import type { ServeOptions, WorkerOptions } from "./options.ts";
import type { ReloadOutcome } from "./reload_helper.ts";

/** Sets the worker up in this process (worker/run.ts); it ends the process when done. */
export async function startWorker(opts: WorkerOptions): Promise<void> {
  (await import("./run.ts")).startWorker(opts);
}

/** Runs the embedded supervisor until it stops (worker/supervised.ts). Returns the exit status. */
export async function runSupervised(opts: ServeOptions, log: Logger): Promise<number> {
  return await (await import("./supervised.ts")).runSupervised(opts, log);
}

/** Runs a warm reload's helper (worker/reload_helper.ts, `apprun takeover`). */
export async function runReloadHelper(command: string[], log: Logger): Promise<ReloadOutcome> {
  return await (await import("./reload_helper.ts")).runReloadHelper(command, log);
}

export { reloadHelperCommand, serveFlags, WORKER_ENTRY, workerCommand } from "./command.ts";
export {
  LIMIT_FLAGS,
  type ServeOptions,
  WORKER_ENV,
  type WorkerOptions,
  workerOptionsOf,
} from "./options.ts";
export { controlSocketPath, defaultName } from "./names.ts";
export { checkAppFile, parseParallel, parseServeArgs } from "./serve_args.ts";
