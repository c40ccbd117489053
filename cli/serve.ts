/**
 * @module
 * `apprun serve HANDLER`: parses the options and starts what they ask for — under a service
 * manager (NOTIFY_SOCKET or LISTEN_FDS set) or with `--no-supervisor`, this process becomes
 * the worker (it execs the worker command, keeping its pid for LISTEN_PID and signals); started
 * by hand, it runs the embedded supervisor with that worker. Command glue only: the work is in
 * runtime/worker.
 */
import { embeddedHandler } from "../runtime/handler.ts";
import { createLogger } from "../runtime/log.ts";
import { DEFAULTS } from "../runtime/defaults.ts";
import { execProcess } from "../runtime/sys/mod.ts";
import {
  parseServeArgs,
  runSupervised,
  startWorker,
  workerCommand,
  workerOptionsOf,
} from "../runtime/worker/mod.ts";

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
  --max-handoff-state SIZE  largest state a restart carries (default 256M): past it, the
                        largest sessions are closed (WebSocket 1012) instead of carried
  --log-level LEVEL     error, warn, info or debug (default info; APPRUN_LOG)
  --parallel [N]        serve on N event loops in this one process (default: DENO_JOBS, else
                        the number of cores); each loop runs APP in its own module instance,
                        imported (import.meta.main false: a guarded Deno.serve serves on one)
  --start-timeout T     how long a start or a reload may take to be ready (default 90s)
  --watch               reload when the app or a file it imports changes
  --name NAME           the service's name (default: the handler's file name)
  --control PATH        the supervisor's control socket (default $XDG_RUNTIME_DIR/apprun/NAME.sock)
  --bin PATH            run PATH (an apprun-compiled binary) as the worker: \`PATH serve …\`
  --no-supervisor       serve in this process, without the supervisor
`;

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
