/**
 * @module
 * The worker's preload: `deno run --preload entry.ts APP` evaluates this before the app's main
 * module. It reads apprun's options from `APPRUN_WORKER` (worker/options.ts) and sets the
 * worker up (worker/run.ts) — listeners, `Deno.serve`, the handoff — then returns, and Deno
 * runs the app as its main module. Without `APPRUN_WORKER` it does nothing.
 */
import { takeWorkerOptions } from "./options.ts";
import { startWorker } from "./run.ts";

let opts;
try {
  opts = takeWorkerOptions();
} catch (err) {
  console.error(`apprun: ${(err as Error).message}`);
  Deno.exit(1);
}
if (opts !== null) startWorker(opts);
