/**
 * @module
 * The one place that turns parsed `serve` options into a worker's command line. A worker is
 * `deno run --preload <apprun>/runtime/worker/entry.ts APP [args]`: the app is Deno's main
 * module (`import.meta.main` is true), its own project (deno.json, package.json) applies as with
 * `deno run`, and apprun's options travel in `APPRUN_WORKER`. An installed or compiled apprun
 * executable (`--bin`, `deno compile`) is run as `EXE serve … --no-supervisor` instead, with
 * the options rebuilt as flags. Renders commands only; starts nothing.
 */
import type { WorkerCommand } from "../supervisor/mod.ts";
import {
  LIMIT_FLAGS,
  type ServeOptions,
  WORKER_ENV,
  type WorkerOptions,
  workerOptionsOf,
} from "./options.ts";

/**
 * The worker's preload module: entry.ts beside this file in a checkout; in the JavaScript build
 * of an installed package (scripts/build.sh) this code sits in a chunk of dist/, and the preload
 * is dist/runtime/worker/entry.js of the package.
 */
export const WORKER_ENTRY: string = import.meta.url.endsWith(".ts")
  ? new URL("./entry.ts", import.meta.url).pathname
  : `${packageRoot(new URL(".", import.meta.url).pathname)}/dist/runtime/worker/entry.js`;

/** The entry of a `--parallel` loop's Worker (worker/loops.ts), found as {@linkcode WORKER_ENTRY} is. */
export const LOOP_ENTRY: string = import.meta.url.endsWith(".ts")
  ? new URL("./loop_entry.ts", import.meta.url).href
  : `file://${
    packageRoot(new URL(".", import.meta.url).pathname)
  }/dist/runtime/worker/loop_entry.js`;

/** The nearest directory at or above `dir` holding a package.json: apprun's package. */
function packageRoot(dir: string): string {
  for (let d = dir.replace(/\/$/, ""); d !== ""; d = d.slice(0, d.lastIndexOf("/"))) {
    try {
      Deno.statSync(`${d}/package.json`);
      return d;
    } catch {
      // not here: one level up
    }
  }
  throw new Error(`apprun's package.json not found above ${dir}`);
}

/**
 * The `apprun` command itself, as a path: `bin/apprun` of this checkout or package, or the
 * compiled executable. What the supervisor runs as its reload helper.
 */
export const APPRUN_LAUNCHER: string = Deno.build.standalone
  ? Deno.execPath()
  : import.meta.url.endsWith(".ts")
  ? new URL("../../bin/apprun", import.meta.url).pathname
  : `${packageRoot(new URL(".", import.meta.url).pathname)}/bin/apprun`;

/**
 * The reload helper for `worker` (systemd's `ExecReload=` for that `ExecStart=`): `apprun
 * takeover -- WORKER…`, with the worker's environment (docs/design.md, "Warm reload").
 */
export function reloadHelperCommand(worker: WorkerCommand): WorkerCommand {
  return {
    path: APPRUN_LAUNCHER,
    args: ["takeover", "--", worker.path, ...worker.args],
    env: worker.env,
  };
}

/** Deno's flags for a worker: what apprun needs (FFI, sockets, files, processes), no prompts. */
const DENO_FLAGS = ["run", "--quiet", "--allow-all", "--no-prompt"];

/**
 * The command that runs the worker for `opts` with environment `env` (the manager's
 * variables are the caller's business). `mode` "check" loads the app and exits.
 */
export function workerCommand(
  opts: ServeOptions,
  env: Record<string, string>,
  mode: WorkerOptions["mode"] = "serve",
): WorkerCommand {
  const exe = opts.bin ?? (Deno.build.standalone ? Deno.execPath() : null);
  if (exe !== null) {
    const handler = opts.handler !== undefined && opts.bin !== undefined ? [opts.handler] : [];
    const command = mode === "check" ? "check" : "serve";
    return {
      path: exe,
      // `check` takes no serve flags (it binds nothing): they would be refused as unknown.
      args: [
        command,
        ...handler,
        ...(mode === "serve" ? ["--no-supervisor", ...serveFlags(opts)] : []),
      ],
      env,
    };
  }
  if (opts.handler === undefined) throw new TypeError("a worker needs the app's main module");
  const worker: WorkerOptions = workerOptionsOf(opts, mode);
  const denoEnv: Record<string, string> = {};
  if (env.DENO_LOG === undefined) {
    // Deno's `deno run` warns about a default export with fetch ("did you mean deno serve?"):
    // apprun serves it. Only Deno's own logs (errors, a module that does not load) stay.
    denoEnv.DENO_LOG = "deno=warn";
    worker.unsetEnv = ["DENO_LOG"];
  }
  return {
    path: Deno.execPath(),
    args: [...DENO_FLAGS, "--preload", WORKER_ENTRY, opts.handler, ...opts.appArgs],
    env: { ...env, ...denoEnv, [WORKER_ENV]: JSON.stringify(worker) },
  };
}

/** `opts` as `serve` flags: what an apprun executable is given to serve the same way. */
export function serveFlags(opts: ServeOptions): string[] {
  const out: string[] = [];
  if (opts.port !== undefined) out.push("--port", String(opts.port));
  if (opts.host !== undefined) out.push("--host", opts.host);
  for (const path of opts.unix) out.push("--unix", path);
  out.push("--drain-timeout", `${opts.drainTimeoutMs}ms`);
  for (const { flag, key, kind } of LIMIT_FLAGS) {
    const value = opts.limits[key];
    if (value !== undefined) out.push(`--${flag}`, kind === "duration" ? `${value}ms` : `${value}`);
  }
  if (opts.maxHandoffStateBytes !== undefined) {
    out.push("--max-handoff-state", String(opts.maxHandoffStateBytes));
  }
  if (opts.logLevel !== undefined) out.push("--log-level", opts.logLevel);
  if (opts.parallel !== undefined) out.push("--parallel", String(opts.parallel));
  if (opts.appArgs.length > 0) out.push("--", ...opts.appArgs);
  return out;
}
