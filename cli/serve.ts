/**
 * @module
 * `apprun serve HANDLER`: parses the options and starts what they ask for — under a service
 * manager (NOTIFY_SOCKET or LISTEN_FDS set) or with `--no-supervisor`, this process becomes
 * the worker (it execs the worker command, keeping its pid for LISTEN_PID and signals); started
 * by hand, it runs the embedded supervisor with that worker. Command glue only: the work is in
 * runtime/worker.
 */
import { embeddedHandler, HandlerError, resolveHandlerPath } from "../runtime/handler.ts";
import { createLogger, parseLogLevel } from "../runtime/log.ts";
import { DEFAULTS } from "../runtime/defaults.ts";
import { execProcess } from "../runtime/sys/mod.ts";
import type { HttpLimits } from "../runtime/http/mod.ts";
import {
  LIMIT_FLAGS,
  runSupervised,
  type ServeOptions,
  startWorker,
  workerCommand,
  workerOptionsOf,
} from "../runtime/worker/mod.ts";
import {
  parseBytes,
  parseCommandLine,
  parseCount,
  parseDuration,
  parsePort,
  UsageError,
} from "./args.ts";

export const SERVE_USAGE = `Usage: apprun serve APP [options] [-- APP_ARGS…]

Runs APP, a .ts/.js module, as Deno's main module (import.meta.main is true, APP_ARGS are its
Deno.args, its own deno.json or package.json applies) and serves what it asks for: each
Deno.serve(…) call, or its default export ({ fetch }, a Hono app, or a (req) => Response
function) as \`deno serve\` does. Listeners passed by systemd (LISTEN_FDS) or given with
--port/--unix win over the port in the code; without them, the code's port is used (8000 for a
default export).

Under systemd (NOTIFY_SOCKET set) it is the service itself: SIGTERM hands its connections to
the next process through the fdstore. Started by hand, it runs a small supervisor that speaks
the same protocol to a worker process: SIGHUP (or --watch) restarts the worker and every
connection lives through it; SIGTERM/SIGINT stop.

Options:
  --port N              TCP port (0 = any free port)
  --host ADDR           address to bind with --port (default 0.0.0.0; "::" for IPv6)
  --unix PATH           also listen on a unix socket (repeatable; @name is abstract)
  --drain-timeout T     how long requests in flight may run after SIGTERM (default ${
  DEFAULTS.drainTimeoutMs / 1000
}s)
  --idle-timeout T      close keep-alive connections idle this long (default 60s)
  --header-timeout T    time allowed to send a request head (default 30s)
  --body-timeout T      longest pause inside a request body (default 60s)
  --handler-timeout T   answer 503 when the handler has not responded within T (default: none)
  --max-body SIZE       largest request body (default 64M)
  --max-head SIZE       largest request head (default 64k)
  --max-line SIZE       longest request line (default 8k)
  --max-headers N       most header fields (default 100)
  --log-level LEVEL     error, warn, info or debug (default info; APPRUN_LOG)
  --start-timeout T     how long a start or a reload may take to be ready (default 90s)
  --watch               reload when the app or a file it imports changes
  --name NAME           the service's name (default: the handler's file name)
  --control PATH        the supervisor's control socket (default $XDG_RUNTIME_DIR/apprun/NAME.sock)
  --bin PATH            run PATH (an apprun-compiled binary) as the worker: \`PATH serve …\`
  --no-supervisor       serve in this process, without the supervisor
`;

/** Parses `serve` arguments. Throws {@linkcode UsageError}. */
export function parseServeArgs(args: string[]): ServeOptions {
  const dashes = args.indexOf("--");
  const own = dashes < 0 ? args : args.slice(0, dashes);
  const appArgs = dashes < 0 ? [] : args.slice(dashes + 1);
  const limitOptions = Object.fromEntries(
    LIMIT_FLAGS.map((f) => [f.flag, { type: "string" as const }]),
  );
  const parsed = parseCommandLine({
    args: own,
    allowPositionals: true,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      unix: { type: "string", multiple: true },
      "drain-timeout": { type: "string" },
      "start-timeout": { type: "string" },
      ...limitOptions,
      "log-level": { type: "string" },
      "no-supervisor": { type: "boolean" },
      watch: { type: "boolean" },
      name: { type: "string" },
      control: { type: "string" },
      bin: { type: "string" },
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
  const handler = parsed.positionals[0];
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
    logLevel: parseLogLevel(logLevel),
  };
}

/** Runs `serve` until SIGTERM/SIGINT. Returns the exit status. */
export async function serve(args: string[]): Promise<number> {
  const opts = parseServeArgs(args);
  // A service manager (NOTIFY_SOCKET) or a socket activator (LISTEN_FDS) is in charge: serve.
  // Started by hand, with neither, become the supervisor of a worker that serves.
  const isManaged = Deno.env.get("NOTIFY_SOCKET") !== undefined ||
    Deno.env.get("LISTEN_FDS") !== undefined;
  if (opts.isSupervisorWanted && !isManaged) {
    const log = createLogger({ level: opts.logLevel, tag: "supervisor" });
    return await runSupervised(opts, log);
  }
  if (Deno.build.standalone || embeddedHandler() !== null) {
    // A compiled binary carries its app: this process is the worker (it exits by itself).
    startWorker(workerOptionsOf(opts));
    return await new Promise<never>(() => {});
  }
  const worker = workerCommand(opts, Deno.env.toObject());
  execProcess(worker.path, [worker.path, ...worker.args], worker.env);
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
