/**
 * @module
 * What `apprun serve` was asked for (`ServeOptions`, parsed by cli/serve.ts), and what a
 * worker process needs of it (`WorkerOptions`). A worker runs the app as Deno's main module,
 * so its command line is the app's (`Deno.args`): apprun's options travel in one environment
 * variable, `APPRUN_WORKER` (JSON), which the worker reads and removes before the app runs.
 */
import type { HttpLimits } from "../http/mod.ts";
import { type LogLevel, parseLogLevel } from "../log.ts";
import { AppRunError } from "../errors.ts";

/** The parsed `apprun serve` command line. */
export interface ServeOptions {
  /** The app's main module, absolute; undefined with `--bin` (the binary knows its own). */
  handler: string | undefined;
  /** Arguments for the app after `--` (its `Deno.args`). */
  appArgs: string[];
  /** Run the embedded supervisor when no service manager is present (not --no-supervisor). */
  isSupervisorWanted: boolean;
  isWatch: boolean;
  name?: string;
  control?: string;
  /** An installed apprun executable the supervisor runs as its worker (`PATH serve …`). */
  bin?: string;
  port?: number;
  host?: string;
  unix: string[];
  drainTimeoutMs: number;
  /** How long a start or a reload may take (the supervisor's TimeoutStartSec=); default 90 s. */
  startTimeoutMs?: number;
  limits: Partial<HttpLimits>;
  /** The largest handoff state written and read (`--max-handoff-state`; default 256 MiB). */
  maxHandoffStateBytes?: number;
  logLevel?: LogLevel;
  /** Event loops in the process (`--parallel`, resolved); undefined: one, the main thread's. */
  parallel?: number;
}

/** How one `serve` option maps to an HTTP limit. */
export interface LimitFlag {
  /** The option, without `--`. */
  flag: string;
  key: keyof HttpLimits;
  kind: "duration" | "bytes" | "count";
}

/** The limit options of `serve`, in one table: the parser and the command builder read it. */
export const LIMIT_FLAGS: readonly LimitFlag[] = [
  { flag: "idle-timeout", key: "idleTimeoutMs", kind: "duration" },
  { flag: "header-timeout", key: "headerTimeoutMs", kind: "duration" },
  { flag: "body-timeout", key: "bodyTimeoutMs", kind: "duration" },
  { flag: "handler-timeout", key: "handlerTimeoutMs", kind: "duration" },
  { flag: "max-body", key: "maxBodyBytes", kind: "bytes" },
  { flag: "max-head", key: "maxHeadBytes", kind: "bytes" },
  { flag: "max-line", key: "maxRequestLineBytes", kind: "bytes" },
  { flag: "max-headers", key: "maxHeaderCount", kind: "count" },
];

/** What a worker process needs (`APPRUN_WORKER`). */
export interface WorkerOptions {
  /** `serve` until stopped, or `check`: load the app, say what it serves, exit. */
  mode: "serve" | "check";
  /** The app's main module, for messages. */
  handler: string;
  /** Listeners to open when no manager passes any (`--port/--host/--unix`): they win over the code's. */
  port?: number;
  host?: string;
  unix: string[];
  drainTimeoutMs: number;
  limits: Partial<HttpLimits>;
  /** The largest handoff state written and read (docs/design.md, "The handoff protocol"). */
  maxHandoffStateBytes?: number;
  logLevel?: LogLevel;
  /** Event loops in the process (worker/loops.ts); undefined or 1: the main thread's alone. */
  parallel?: number;
  /** Variables set for Deno itself, removed before the app runs (so its children do not get them). */
  unsetEnv?: string[];
}

/** The variable that carries {@linkcode WorkerOptions} to a worker. */
export const WORKER_ENV = "APPRUN_WORKER";

/** The worker's part of `opts`. */
export function workerOptionsOf(
  opts: ServeOptions,
  mode: WorkerOptions["mode"] = "serve",
): WorkerOptions {
  return {
    mode,
    handler: opts.handler ?? "",
    port: opts.port,
    host: opts.host,
    unix: opts.unix,
    drainTimeoutMs: opts.drainTimeoutMs,
    limits: opts.limits,
    maxHandoffStateBytes: opts.maxHandoffStateBytes,
    logLevel: opts.logLevel,
    parallel: opts.parallel,
  };
}

/**
 * Reads and removes the JSON in the environment variable `name` (the app never sees it);
 * undefined when it is absent (JSON never parses to undefined). Throws what `makeError` makes (message, cause) when it is not JSON.
 */
export function takeEnvJson(
  name: string,
  makeError: (message: string, cause: unknown) => Error,
): unknown {
  const text = Deno.env.get(name);
  if (text === undefined) return undefined;
  Deno.env.delete(name);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw makeError(`${name} is not JSON`, err);
  }
}

/**
 * Reads and removes `APPRUN_WORKER`. Returns null when it is absent (not a worker); throws
 * {@linkcode AppRunError} when it is not what apprun writes.
 */
export function takeWorkerOptions(): WorkerOptions | null {
  const o = takeEnvJson(
    WORKER_ENV,
    (message, cause) => new AppRunError("ERR_USAGE", message, { cause }),
  ) as Partial<WorkerOptions> | null | undefined;
  if (o === undefined) return null;
  const isValid = o !== null && typeof o === "object" &&
    (o.mode === "serve" || o.mode === "check") && typeof o.handler === "string" &&
    Array.isArray(o.unix) && typeof o.drainTimeoutMs === "number" &&
    typeof o.limits === "object" && o.limits !== null &&
    (o.logLevel === undefined || parseLogLevel(o.logLevel) !== undefined) &&
    (o.maxHandoffStateBytes === undefined || Number.isSafeInteger(o.maxHandoffStateBytes)) &&
    (o.parallel === undefined || (Number.isSafeInteger(o.parallel) && o.parallel >= 1));
  if (!isValid) throw new AppRunError("ERR_USAGE", `${WORKER_ENV} is not what apprun writes`);
  for (const name of o.unsetEnv ?? []) Deno.env.delete(name);
  return o as WorkerOptions;
}
