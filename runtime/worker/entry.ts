/**
 * @module
 * The worker's preload: `deno run --preload entry.ts APP` evaluates this before the app's main
 * module. It takes apprun's options, sets the worker up (worker/run.ts) — listeners,
 * `Deno.serve`, the handoff — and returns; Deno then runs the app as its main module.
 *
 * The options come one of two ways:
 * - `APPRUN_WORKER` (JSON, worker/options.ts): from `apprun serve` or the supervisor, which
 *   built the command (worker/command.ts); `Deno.args` are the app's already.
 * - `APPRUN_SERVE`: bin/apprun started this directly for `apprun serve APP …` under a manager,
 *   skipping a second Deno start (docs/design.md, "Running the app"). `Deno.args` then hold
 *   `serve`'s options, `--`, and the app's own arguments: they are read here and `Deno.args`
 *   is left with the app's only. (Node's `process.argv` still shows them all.)
 * With neither it does nothing.
 */
import { type ServeOptions, takeWorkerOptions, workerOptionsOf } from "./options.ts";
import { parseServeArgs } from "./serve_args.ts";
import { startWorker } from "./run.ts";
import { AppRunError } from "../errors.ts";
import { writeFatal } from "../log.ts";

/** bin/apprun's marker; "deno-log" when it also set DENO_LOG for Deno alone (command.ts). */
const SERVE_ENV = "APPRUN_SERVE";

/** `serve`'s own command line, when bin/apprun started this process directly. */
function takeServeCommandLine(): ServeOptions | null {
  const marker = Deno.env.get(SERVE_ENV);
  if (marker === undefined) return null;
  Deno.env.delete(SERVE_ENV);
  if (marker === "deno-log") Deno.env.delete("DENO_LOG");
  const app = decodeURIComponent(new URL(Deno.mainModule).pathname);
  const opts = parseServeArgs([app, ...Deno.args]);
  Object.defineProperty(Deno, "args", { value: opts.appArgs, configurable: true });
  return opts;
}

try {
  const fromServe = takeServeCommandLine();
  const opts = fromServe !== null ? workerOptionsOf(fromServe) : takeWorkerOptions();
  if (opts !== null) startWorker(opts);
} catch (err) {
  writeFatal((err as Error).message);
  Deno.exit(err instanceof AppRunError && err.code === "ERR_USAGE" ? 2 : 1);
}
