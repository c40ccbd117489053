/**
 * @module
 * The worker: the apprun process that serves (under systemd, a socket activator, or apprun's
 * own supervisor), and how one is started: its command line (command.ts), its options, and the
 * supervised launch for `apprun serve` started by hand. Other areas import only from here.
 */
export { startWorker } from "./run.ts";
export { reloadHelperCommand, serveFlags, WORKER_ENTRY, workerCommand } from "./command.ts";
export {
  LIMIT_FLAGS,
  type ServeOptions,
  WORKER_ENV,
  type WorkerOptions,
  workerOptionsOf,
} from "./options.ts";
export { controlSocketPath, defaultName, runSupervised } from "./supervised.ts";
export { NO_TAKEOVER, runReloadHelper } from "./reload_helper.ts";
