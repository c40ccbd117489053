/**
 * @module
 * `apprun serve HANDLER`: parses the options, loads the handler, takes the listeners (socket
 * activation, or --port/--host/--unix), runs the server, reports readiness to the service
 * manager, and on SIGTERM/SIGINT stops gracefully. Command glue only: the work is in runtime/.
 */
import { parseArgs } from "node:util";
import { describeError } from "../runtime/errors.ts";
import { loadHandler } from "../runtime/handler.ts";
import {
  adoptListener,
  type Listener,
  openListeners,
  type PassedFd,
  takeListenFds,
} from "../runtime/listen.ts";
import { handOff } from "../runtime/handoff/hand_off.ts";
import { ownListenerName, type SortedFds, sortPassedFds } from "../runtime/handoff/names.ts";
import { readHandoff, type Resumed } from "../runtime/handoff/resume.ts";
import { findHooks } from "../runtime/sessions.ts";
import { explainCapacity, queryFdStoreCapacity } from "../runtime/fdstore_capacity.ts";
import { createLogger, type Logger, parseLogLevel } from "../runtime/log.ts";
import { Notifier } from "../runtime/notify.ts";
import { Server } from "../runtime/server.ts";
import { closeFd, dieWithParent, raiseFdLimit, SIGNALS } from "../runtime/sys/mod.ts";
import type { HttpLimits } from "../runtime/http/limits.ts";
import { parseBytes, parseCount, parseDuration, parsePort, UsageError } from "./args.ts";
import { runSupervised } from "./supervise.ts";
import { embeddedHandler } from "../runtime/handler.ts";

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
  let parsed;
  try {
    parsed = parseArgs({
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
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
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

/**
 * The worker: takes its fds (listeners, a handoff bundle), loads the handler, resumes carried
 * connections, serves, and on SIGTERM hands off through the fdstore when there is one, or
 * stops gracefully when there is not (and on SIGINT).
 */
async function runWorker(opts: ServeOptions, log: Logger): Promise<number> {
  keepAliveOnAppErrors(log);
  followSupervisor(log);
  const notifier = Notifier.fromEnv();
  try {
    raiseFdLimit();
  } catch (err) {
    log.warn(`cannot raise the open-files limit: ${describeError(err)}`);
  }
  const sorted = sortPassedFds(takeListenFds());
  if (sorted.invalid.length > 0) adoptListener(sorted.invalid[0]); // throws the precise error
  forgetStrangers(sorted.strangers, notifier, log);
  // DESIGN §3: load the handler before touching the bundle, so a broken handler leaves it intact.
  const loaded = await loadHandler(opts.handler ?? "");
  const listeners = takeListeners(sorted, opts);
  const ownListeners = listeners.filter((l) => l.isOwned);
  const bundle = sorted.bundle;
  let resumed: Resumed | null = null;
  if (bundle !== null) {
    try {
      resumed = await readHandoff(bundle.fd, bundle.generation, log);
    } catch (err) {
      log.error(
        `handoff bundle ${bundle.name} unreadable, starting without it: ${describeError(err)}`,
      );
    }
  }
  const generation = bundle?.generation ?? 0;
  const hooks = findHooks(loaded.namespace, loaded.module);
  const server = new Server({
    handler: loaded.fetch,
    listeners,
    log,
    notifier,
    limits: opts.limits,
    drainTimeoutMs: opts.drainTimeoutMs,
    hooks,
    generation,
  });
  server.start();
  if (resumed !== null && hooks.onAppResume) {
    try {
      hooks.onAppResume(resumed.app);
    } catch (err) {
      log.error(`onAppResume failed: ${describeError(err)}`);
    }
  }
  for (const c of resumed?.connections ?? []) server.resume(c.fd, c.record);
  callOnListen(loaded.module, listeners, log);
  const carried = resumed?.connections.length ?? 0;
  server.notifyReady(bundle ? `generation ${generation}, resumed ${carried} connections` : "");
  if (bundle !== null) {
    // After READY=1: the new process owns the connections; the bundle must leave the store.
    try {
      notifier?.fdstoreRemove(bundle.name);
    } catch (err) {
      log.warn(`FDSTOREREMOVE ${bundle.name} failed: ${describeError(err)}`);
    }
    closeFd(bundle.fd);
    const pause = resumed?.createdAt
      ? ` (${Date.now() - resumed.createdAt} ms since the snapshot)`
      : "";
    log.info(`resumed ${carried} connections from generation ${generation}${pause}`);
  }
  const stopWatchdog = startWatchdog(notifier, log);
  const needed = 1 + ownListeners.length;
  const capacity = notifier === null ? Promise.resolve(0) : queryFdStoreCapacity(log).then((c) => {
    explainCapacity(c, needed, log);
    return c;
  });
  const signal = await waitForStopSignal();
  stopWatchdog();
  try {
    notifier?.stopping();
  } catch (err) {
    log.warn(`sd_notify failed: ${describeError(err)}`);
  }
  const room = await Promise.race([
    capacity,
    new Promise<number>((r) => setTimeout(() => r(-1), 500)),
  ]);
  const isHandoff = signal === "SIGTERM" && notifier !== null && room !== 0;
  if (isHandoff) {
    log.info(`SIGTERM: handing off (drain timeout ${opts.drainTimeoutMs} ms)`);
    const report = await handOff({
      server,
      notifier: notifier!,
      generation,
      ownListeners,
      drainTimeoutMs: opts.drainTimeoutMs,
      log,
    });
    log.info(
      `handed off ${report.carried} connections as generation ${generation + 1} in ` +
        `${report.durationMs.toFixed(1)} ms (drain ${report.drainMs.toFixed(1)} ms)`,
    );
  } else {
    log.info(`${signal}: stopping (drain timeout ${opts.drainTimeoutMs} ms)`);
    server.stopAccepting();
    // New connections on a listener we opened would wait in its backlog and be reset at exit:
    // close it now so they are refused. A manager's listener keeps them for the next start.
    for (const l of ownListeners) closeFd(l.fd);
    await server.shutdown();
    log.info("stopped");
  }
  for (const l of listeners) if (isHandoff || !l.isOwned) closeFd(l.fd);
  notifier?.close();
  return 0;
}

/** Under apprun's supervisor: stop (SIGTERM) when it dies, as a service dies with its manager. */
function followSupervisor(log: Logger): void {
  const pid = Deno.env.get("APPRUN_SUPERVISOR_PID");
  Deno.env.delete("APPRUN_SUPERVISOR_PID");
  if (pid === undefined || !/^\d+$/.test(pid)) return;
  if (!dieWithParent(SIGNALS.SIGTERM, Number(pid))) {
    log.error(`supervisor ${pid} is gone: exiting`);
    Deno.exit(1);
  }
}

/**
 * A promise the app forgot to await, or a throw inside one of its timers, is the app's bug,
 * not a reason to drop every connection: log it and keep serving.
 */
function keepAliveOnAppErrors(log: Logger): void {
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    log.error(`unhandled promise rejection in the app: ${describeError(e.reason)}`);
  });
  globalThis.addEventListener("error", (e) => {
    e.preventDefault();
    log.error(`uncaught exception in the app: ${describeError(e.error ?? e.message)}`);
  });
}

/** Closes stored fds we do not recognise and removes them from the store (sd_notify(3)). */
function forgetStrangers(strangers: PassedFd[], notifier: Notifier | null, log: Logger): void {
  const names = new Set<string>();
  for (const p of strangers) {
    closeFd(p.fd);
    names.add(p.name);
  }
  for (const name of names) {
    log.warn(`closing stored fds named "${name}": not ours, or from an older handoff`);
    try {
      notifier?.fdstoreRemove(name);
    } catch (err) {
      log.warn(`FDSTOREREMOVE ${name} failed: ${describeError(err)}`);
    }
  }
}

function takeListeners(sorted: SortedFds, opts: ServeOptions): Listener[] {
  const passed = sorted.listeners;
  const fromUnit = passed.filter((p) => !sorted.ownListenerNames.has(p.name));
  if (fromUnit.length > 0 && (opts.port !== undefined || opts.unix.length > 0)) {
    throw new UsageError("--port/--unix cannot be used under socket activation (LISTEN_FDS)");
  }
  if (passed.length > 0) {
    return passed.map((p) => {
      const isOwned = sorted.ownListenerNames.has(p.name);
      const l = adoptListener(p, isOwned);
      return isOwned ? { ...l, name: ownListenerName(p.name) } : l;
    });
  }
  const port = opts.port ?? (opts.unix.length > 0 ? undefined : 8000);
  return openListeners({ port, host: opts.host, unix: opts.unix });
}

/** `deno serve` calls `onListen({ hostname, port })`: so do we, for the first TCP listener. */
function callOnListen(mod: Record<string, unknown>, listeners: Listener[], log: Logger): void {
  if (typeof mod.onListen !== "function") return;
  const tcp = listeners.find((l) => l.addr.transport === "tcp");
  const addr = tcp?.addr ?? listeners[0]?.addr;
  try {
    (mod.onListen as (a: unknown) => void).call(mod, addr);
  } catch (err) {
    log.error(`onListen failed: ${describeError(err)}`);
  }
}

/** WATCHDOG=1 at half the interval systemd asked for (sd_watchdog_enabled(3)). */
function startWatchdog(notifier: Notifier | null, log: Logger): () => void {
  const usec = Number(Deno.env.get("WATCHDOG_USEC") ?? "0");
  const pid = Deno.env.get("WATCHDOG_PID");
  Deno.env.delete("WATCHDOG_USEC");
  Deno.env.delete("WATCHDOG_PID");
  if (notifier === null || !(usec > 0) || (pid !== undefined && Number(pid) !== Deno.pid)) {
    return () => {};
  }
  const ping = () => {
    try {
      notifier.watchdog();
    } catch (err) {
      log.warn(`watchdog ping failed: ${describeError(err)}`);
    }
  };
  ping();
  const timer = setInterval(ping, Math.max(usec / 2000, 10));
  return () => clearInterval(timer);
}

function waitForStopSignal(): Promise<"SIGTERM" | "SIGINT"> {
  return new Promise((resolve) => {
    const onTerm = () => done("SIGTERM");
    const onInt = () => done("SIGINT");
    const done = (sig: "SIGTERM" | "SIGINT") => {
      Deno.removeSignalListener("SIGTERM", onTerm);
      Deno.removeSignalListener("SIGINT", onInt);
      resolve(sig);
    };
    Deno.addSignalListener("SIGTERM", onTerm);
    Deno.addSignalListener("SIGINT", onInt);
  });
}
