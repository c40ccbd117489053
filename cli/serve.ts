/**
 * @module
 * `apprun serve HANDLER`: parses the options, loads the handler, takes the listeners (socket
 * activation, or --port/--host/--unix), runs the server, reports readiness to the service
 * manager, and on SIGTERM/SIGINT stops gracefully. Command glue only: the work is in runtime/.
 */
import { embeddedHandler } from "../runtime/handler.ts";
import { createLogger, parseLogLevel } from "../runtime/log.ts";
import { runWorker } from "../runtime/worker/mod.ts";
import type { HttpLimits } from "../runtime/http/limits.ts";
import {
  parseBytes,
  parseCommandLine,
  parseCount,
  parseDuration,
  parsePort,
  UsageError,
} from "./args.ts";
import { runSupervised } from "./supervise.ts";

export const SERVE_USAGE = `Usage: apprun serve HANDLER [options]

Serves HANDLER (a .ts/.js module whose default export is { fetch }, a Hono app, or a
(req) => Response function) on the sockets passed by systemd (LISTEN_FDS), or on
--port/--host/--unix when started by hand (default: port 8000 on 0.0.0.0).

Under systemd (NOTIFY_SOCKET set) it is the service itself: SIGTERM hands its connections to
the next process through the fdstore. Started by hand, it runs a small supervisor that speaks
the same protocol to a worker process: SIGHUP (or --watch) restarts the worker and every
connection lives through it; SIGTERM/SIGINT stop.

Options:
  --port N              TCP port (0 = any free port)
  --host ADDR           address to bind with --port (default 0.0.0.0; "::" for IPv6)
  --unix PATH           also listen on a unix socket (repeatable; @name is abstract)
  --drain-timeout T     how long requests in flight may run after SIGTERM (default 30s)
  --idle-timeout T      close keep-alive connections idle this long (default 60s)
  --header-timeout T    time allowed to send a request head (default 30s)
  --body-timeout T      longest pause inside a request body (default 60s)
  --handler-timeout T   answer 503 when the handler has not responded within T (default: none)
  --max-body SIZE       largest request body (default 64M)
  --max-head SIZE       largest request head (default 64k)
  --max-line SIZE       longest request line (default 8k)
  --max-headers N       most header fields (default 100)
  --log-level LEVEL     error, warn, info or debug (default info; APPRUN_LOG)
  --watch               restart the worker when a file beside the handler changes
  --name NAME           the service's name (default: the handler's file name)
  --control PATH        the supervisor's control socket (default $XDG_RUNTIME_DIR/apprun/NAME.sock)
  --bin PATH            run PATH (an apprun-compiled binary) as the worker: \`PATH serve …\`
  --no-supervisor       serve in this process, without the supervisor
`;

/** Parsed `serve` options. */
export interface ServeOptions {
  /** The handler module; undefined for a compiled binary (embedded) or with --bin. */
  handler: string | undefined;
  /** Run the embedded supervisor when no service manager is present (not --no-supervisor). */
  isSupervisorWanted: boolean;
  isWatch: boolean;
  name?: string;
  control?: string;
  /** The installed executable the supervisor runs as its worker (`PATH serve …`). */
  bin?: string;
  port?: number;
  host?: string;
  unix: string[];
  drainTimeoutMs: number;
  limits: Partial<HttpLimits>;
  logLevel?: string;
}

/** Parses `serve` arguments. Throws {@linkcode UsageError}. */
export function parseServeArgs(args: string[]): ServeOptions {
  const parsed = parseCommandLine({
    args,
    allowPositionals: true,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      unix: { type: "string", multiple: true },
      "drain-timeout": { type: "string" },
      "idle-timeout": { type: "string" },
      "header-timeout": { type: "string" },
      "body-timeout": { type: "string" },
      "handler-timeout": { type: "string" },
      "max-body": { type: "string" },
      "max-head": { type: "string" },
      "max-line": { type: "string" },
      "max-headers": { type: "string" },
      "log-level": { type: "string" },
      "no-supervisor": { type: "boolean" },
      watch: { type: "boolean" },
      name: { type: "string" },
      control: { type: "string" },
      bin: { type: "string" },
    },
  });
  const v = parsed.values;
  const hasEmbedded = embeddedHandler() !== null;
  if (
    parsed.positionals.length > 1 || (parsed.positionals.length === 0 && !hasEmbedded && !v.bin)
  ) {
    throw new UsageError(
      parsed.positionals.length === 0
        ? "serve needs a handler file"
        : `serve takes one handler file, got ${parsed.positionals.length}`,
    );
  }
  if (v.name !== undefined && !/^[A-Za-z0-9_.@-]{1,100}$/.test(v.name)) {
    throw new UsageError(`--name: "${v.name}" must be 1–100 letters, digits, or _ . @ -`);
  }
  if (v["log-level"] !== undefined && !parseLogLevel(v["log-level"])) {
    throw new UsageError(`--log-level: "${v["log-level"]}" is not error, warn, info or debug`);
  }
  if (v.host !== undefined && v.port === undefined) {
    throw new UsageError("--host needs --port");
  }
  const limits: Partial<HttpLimits> = {};
  if (v["idle-timeout"]) limits.idleTimeoutMs = parseDuration("idle-timeout", v["idle-timeout"]);
  if (v["header-timeout"]) {
    limits.headerTimeoutMs = parseDuration("header-timeout", v["header-timeout"]);
  }
  if (v["body-timeout"]) limits.bodyTimeoutMs = parseDuration("body-timeout", v["body-timeout"]);
  if (v["handler-timeout"]) {
    limits.handlerTimeoutMs = parseDuration("handler-timeout", v["handler-timeout"]);
  }
  if (v["max-body"]) limits.maxBodyBytes = parseBytes("max-body", v["max-body"]);
  if (v["max-head"]) limits.maxHeadBytes = parseBytes("max-head", v["max-head"]);
  if (v["max-line"]) limits.maxRequestLineBytes = parseBytes("max-line", v["max-line"]);
  if (v["max-headers"]) limits.maxHeaderCount = parseCount("max-headers", v["max-headers"]);
  return {
    handler: parsed.positionals[0],
    isSupervisorWanted: !v["no-supervisor"],
    isWatch: v.watch ?? false,
    name: v.name,
    control: v.control,
    bin: v.bin,
    port: v.port !== undefined ? parsePort("port", v.port) : undefined,
    host: v.host,
    unix: v.unix ?? [],
    drainTimeoutMs: v["drain-timeout"]
      ? parseDuration("drain-timeout", v["drain-timeout"])
      : 30_000,
    limits,
    logLevel: v["log-level"],
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
    const log = createLogger({ level: parseLogLevel(opts.logLevel), tag: "supervisor" });
    return await runSupervised(opts, args, log);
  }
  const log = createLogger({ level: parseLogLevel(opts.logLevel) });
  return await runWorker(opts, log);
}
