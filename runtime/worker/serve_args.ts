/**
 * @module
 * `serve`'s command line: APP, its options, and `-- APP_ARGS…`. Read by `apprun serve`
 * (cli/serve.ts) and by the worker itself when bin/apprun starts it directly under a manager
 * (worker/entry.ts), so both read the same options the same way. A missing app is one line at
 * once, not a worker that fails to start.
 */
import { embeddedHandler, HandlerError, resolveHandlerPath } from "../handler.ts";
import { parseLogLevel } from "../log.ts";
import { DEFAULTS } from "../defaults.ts";
import type { HttpLimits } from "../http/mod.ts";
import {
  parseBytes,
  parseCommandLine,
  parseCount,
  parseDuration,
  parsePort,
  UsageError,
} from "../args.ts";
import { LIMIT_FLAGS, type ServeOptions } from "./options.ts";

/** Parses `serve` arguments. Throws {@linkcode UsageError}. */
export function parseServeArgs(args: string[]): ServeOptions {
  const dashes = args.indexOf("--");
  const own = dashes < 0 ? args : args.slice(0, dashes);
  const appArgs = dashes < 0 ? [] : args.slice(dashes + 1);
  const limitOptions = Object.fromEntries(
    LIMIT_FLAGS.map((f) => [f.flag, { type: "string" as const }]),
  );
  const parsed = parseCommandLine({
    args: joinParallelCount(own),
    allowPositionals: true,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      unix: { type: "string", multiple: true },
      "drain-timeout": { type: "string" },
      "start-timeout": { type: "string" },
      ...limitOptions,
      "max-handoff-state": { type: "string" },
      "log-level": { type: "string" },
      "no-supervisor": { type: "boolean" },
      watch: { type: "boolean" },
      name: { type: "string" },
      control: { type: "string" },
      bin: { type: "string" },
      parallel: { type: "string" },
    },
  });
  const v = parsed.values as Record<string, string | string[] | boolean | undefined>;
  const str = (k: string) => v[k] as string | undefined;
  const hasEmbedded = embeddedHandler() !== null;
  const n = parsed.positionals.length;
  if (n > 1 || (n === 0 && !hasEmbedded && !v.bin)) {
    throw new UsageError(
      n === 0 ? "serve needs an app (a .ts/.js module)" : `serve takes one app module, got ${n}`,
    );
  }
  const name = str("name");
  if (name !== undefined && !/^[A-Za-z0-9_.@-]{1,100}$/.test(name)) {
    throw new UsageError(`--name: "${name}" must be 1–100 letters, digits, or _ . @ -`);
  }
  const logLevel = str("log-level");
  if (logLevel !== undefined && !parseLogLevel(logLevel)) {
    throw new UsageError(`--log-level: "${logLevel}" is not error, warn, info or debug`);
  }
  if (v.host !== undefined && v.port === undefined) throw new UsageError("--host needs --port");
  const limits: Partial<HttpLimits> = {};
  for (const { flag, key, kind } of LIMIT_FLAGS) {
    const value = str(flag);
    if (value === undefined) continue;
    limits[key] = kind === "duration"
      ? parseDuration(flag, value)
      : kind === "bytes"
      ? parseBytes(flag, value)
      : parseCount(flag, value);
  }
  const drain = str("drain-timeout");
  const startTimeout = str("start-timeout");
  const maxState = str("max-handoff-state");
  const handler = parsed.positionals[0];
  const parallel = str("parallel");
  return {
    handler: handler === undefined ? undefined : checkAppFile(handler),
    appArgs,
    isSupervisorWanted: !v["no-supervisor"],
    isWatch: (v.watch as boolean | undefined) ?? false,
    name,
    control: str("control"),
    bin: str("bin"),
    port: v.port !== undefined ? parsePort("port", str("port")!) : undefined,
    host: str("host"),
    unix: (v.unix as string[] | undefined) ?? [],
    drainTimeoutMs: drain ? parseDuration("drain-timeout", drain) : DEFAULTS.drainTimeoutMs,
    startTimeoutMs: startTimeout ? parseDuration("start-timeout", startTimeout) : undefined,
    limits,
    maxHandoffStateBytes: maxState ? parseBytes("max-handoff-state", maxState) : undefined,
    logLevel: parseLogLevel(logLevel),
    parallel: parallel === undefined ? undefined : parseParallel(parallel),
  };
}

/**
 * `--parallel [N]` takes an optional count: the next argument is the count unless it is an
 * option or names a module (`--parallel app.ts` is the default count). As `--parallel=VALUE`
 * from here on, "" meaning the default.
 */
function joinParallelCount(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] !== "--parallel") {
      out.push(args[i]);
      continue;
    }
    const next = args[i + 1];
    const isCount = next !== undefined && !next.startsWith("-") && !/\.[cm]?[jt]sx?$/.test(next);
    out.push(`--parallel=${isCount ? next : ""}`);
    if (isCount) i++;
  }
  return out;
}

/**
 * The number of event loops: N, or by default `DENO_JOBS` (as `deno serve --parallel` reads
 * it) or the number of cores. Throws {@linkcode UsageError}.
 */
export function parseParallel(value: string): number {
  if (value === "") {
    const jobs = Deno.env.get("DENO_JOBS");
    const n = jobs !== undefined && /^\d+$/.test(jobs)
      ? Number(jobs)
      : navigator.hardwareConcurrency;
    return Math.min(Math.max(1, n), DEFAULTS.maxLoops);
  }
  const n = parseCount("parallel", value);
  if (n > DEFAULTS.maxLoops) {
    throw new UsageError(`--parallel: ${n} is more than ${DEFAULTS.maxLoops} loops`);
  }
  return n;
}

/**
 * A missing app is one line at once (naming it as the user wrote it), not a worker that fails
 * to start. Returns the absolute path. Throws {@linkcode HandlerError}.
 */
export function checkAppFile(path: string): string {
  let info;
  try {
    info = Deno.statSync(path);
  } catch (err) {
    throw new HandlerError("ERR_HANDLER_NOT_FOUND", `handler file not found: ${path}`, {
      cause: err,
    });
  }
  if (!info.isFile) {
    throw new HandlerError("ERR_HANDLER_NOT_FOUND", `handler ${path} is not a file`);
  }
  return resolveHandlerPath(path);
}
