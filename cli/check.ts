/**
 * @module
 * `apprun check [APP]`: becomes a worker in check mode (it execs the worker command): APP
 * (the one built in when none is given) runs as under `serve`, up to the moment it is loaded,
 * and the worker prints what it serves; an app that cannot be used is one line and exit 1. What `apprun upgrade` runs as `NEW check` before it touches anything. Binds
 * nothing.
 */
import { embeddedHandler } from "../runtime/handler.ts";
import { DEFAULTS } from "../runtime/defaults.ts";
import { MANAGER_PROTOCOL_ENV } from "../runtime/notify.ts";
import { execProcess } from "../runtime/sys/mod.ts";
import {
  type ServeOptions,
  startWorker,
  workerCommand,
  workerOptionsOf,
} from "../runtime/worker/mod.ts";
import { parseCommandLine, UsageError } from "../runtime/args.ts";
import { checkAppFile } from "../runtime/worker/mod.ts";

export const CHECK_USAGE = `Usage: apprun check [APP]

Runs APP (or, in a compiled binary, the app built in) as apprun serve would until it is loaded,
and prints "ok: APP (N servers)" (exit 0) without listening; an app that cannot be used prints
one line and exits 1.
`;

/** Runs `check`. */
export async function check(args: string[]): Promise<number> {
  const { positionals } = parseCommandLine({ args, allowPositionals: true, options: {} });
  if (positionals.length > 1) {
    throw new UsageError(`check takes one app module, got ${positionals.length}`);
  }
  const embedded = embeddedHandler();
  if (positionals.length === 0 && embedded === null) throw new UsageError("check needs an app");
  const opts: ServeOptions = {
    handler: positionals.length > 0 ? checkAppFile(positionals[0]) : embedded!.path,
    appArgs: [],
    isSupervisorWanted: false,
    isWatch: false,
    unix: [],
    drainTimeoutMs: DEFAULTS.drainTimeoutMs,
    limits: {},
  };
  if (positionals.length === 0 || Deno.build.standalone) {
    startWorker(workerOptionsOf(opts, "check")); // exits by itself
    return await new Promise<never>(() => {});
  }
  const env = Deno.env.toObject();
  for (const k of MANAGER_PROTOCOL_ENV) delete env[k];
  const worker = workerCommand(opts, env, "check");
  execProcess(worker.path, [worker.path, ...worker.args], worker.env);
}
