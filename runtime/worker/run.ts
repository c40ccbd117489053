/**
 * @module
 * The worker: the process that serves, under systemd, a socket activator or apprun's own
 * supervisor. It is started as `deno run --preload entry.ts APP` (worker/command.ts), so the
 * app is Deno's main module and this code runs first. Start-up, in this order
 * (docs/design.md, "Worker start-up"):
 *
 *   1. process duties: stop signals, app errors, following the supervisor, SIGHUP as a reload
 *      request, sd_notify, fd limit
 *   2. the fds: passed ones sorted into listeners, the newest handoff bundle, strangers (closed,
 *      removed) — or, started by a reload helper (warm), the running process's listeners
 *   3. install `Deno.serve` (and `Deno.upgradeWebSocket`) and let the app's main module run
 *      until it is loaded — a failure here is one line and exit 1, with the bundle untouched
 *      for the rollback (warm: the running process never stopped serving)
 *   4. the bundle: read from the store, or asked of the running process (warm)
 *   5. start the server on the app's listeners and resume what was carried
 *   6. READY=1 (warm: once the helper made this the main process; then the old one exits),
 *      then remove the bundle (and stored listeners no server took) from the store
 *   7. serve until taken over, SIGTERM (hand off through the fdstore) or SIGINT (graceful
 *      stop); exit (serving.ts)
 *
 * Owns the listeners it was given or opened, and closes them before it exits.
 */
import { AppRunError, describeError } from "../errors.ts";
import { createLogger, type Logger, writeFatal } from "../log.ts";
import { adoptListener, takeListenFds } from "../listen.ts";
import { Notifier } from "../notify.ts";
import type { Server } from "../server.ts";
import { closeFd, raiseFdLimit } from "../sys/mod.ts";
import { installDenoServe, installDenoUpgradeWebSocket } from "../deno/mod.ts";
import { listenerStoreName, loadStateCodec } from "../handoff/mod.ts";
import { embeddedHandler, HandlerError } from "../handler.ts";
import { type SortedFds, sortPassedFds } from "./fds.ts";
import { readHandoff, type Resumed } from "./resume.ts";
import { warmUpHandoff } from "./hand_off.ts";
import { forgetStrangers, putBack } from "./start.ts";
import { ListenerPool } from "./listeners.ts";
import { WorkerApp } from "./app.ts";
import type { WorkerOptions } from "./options.ts";
import {
  followSupervisor,
  keepAliveOnAppErrors,
  reloadOnHangup,
  waitForStopSignal,
} from "./process.ts";
import { prepareServer, serveUntilDone, startServers } from "./serving.ts";
import type { LoopGroup } from "./loops.ts";
import {
  reportFailure,
  TakeoverClient,
  type TakeoverSpec,
  takeTakeoverSpec,
} from "./takeover_client.ts";

/** What the start-up steps pass on. */
interface Started {
  opts: WorkerOptions;
  log: Logger;
  notifier: Notifier | null;
  sorted: SortedFds;
  pool: ListenerPool | null;
  app: WorkerApp;
  stopSignal: Promise<"SIGTERM" | "SIGINT" | "app">;
  /** The takeover of a running process (warm), or null (a cold start or a handoff). */
  client: TakeoverClient | null;
  /** The other event loops (`--parallel`), once the app loaded here; null: this one alone. */
  loops: LoopGroup | null;
  /** Set once the worker holds carried connections: a stop signal is then a handoff. */
  hold(): void;
  tRuntime: number;
}

/** How long past its drain timeout the running process may take to hand its bundle over. */
const TAKE_MARGIN_MS = 15_000;

/** Started by a reload helper: whom to tell why we exit, if we fail before taking over. */
let takeover: TakeoverSpec | null = null;

/**
 * Steps 1–3: sets the worker up and returns, so the app's main module runs next; the rest
 * follows once the app is loaded. Ends the process when the worker is done.
 */
export function startWorker(opts: WorkerOptions): void {
  const log = createLogger({ level: opts.logLevel });
  let started: Started;
  try {
    started = setUp(opts, log);
  } catch (err) {
    exitFatal(err);
  }
  started.app.loaded.then(
    () => opts.mode === "check" ? reportCheck(started) : serveApp(started),
    exitFatal,
  ).then((code) => Deno.exit(code), exitFatal);
}

/** Steps 1–3. Throws (one line) when the passed fds or the listeners cannot be used. */
function setUp(opts: WorkerOptions, log: Logger): Started {
  const tRuntime = performance.now(); // since the runtime started: spawn → exec → Deno up
  // 1. Stop signals are watched from the start: Deno's default action would kill us with the
  // carried connections. While we hold nothing (the app still loading, a hung import too) a
  // stop signal ends us at once and the bundle stays whole.
  let isHolding = false;
  const stopped = Promise.withResolvers<"app">();
  const stopSignal = Promise.race([
    waitForStopSignal().then((signal) => {
      if (!isHolding) Deno.exit(0);
      return signal;
    }),
    stopped.promise,
  ]);
  takeover = opts.mode === "check" ? null : takeTakeoverSpec();
  // Warm, we were orphaned on purpose (to be the manager's own child): wait for the re-parent.
  const supervisorPid = followSupervisor(log, takeover !== null);
  const notifier = opts.mode === "check" ? null : Notifier.fromEnv();
  // Managed, a SIGHUP asks for a reload; by hand (no manager) it is a hangup, as always.
  if (opts.mode !== "check" && (supervisorPid !== null || notifier !== null)) {
    reloadOnHangup(supervisorPid, log);
  }
  try {
    raiseFdLimit();
  } catch (err) {
    log.warn(`cannot raise the open-files limit: ${describeError(err)}`);
  }
  // 2. The passed fds, before the app can see LISTEN_FDS; warm, the running process's.
  const client = takeover === null ? null : TakeoverClient.connect(takeover, log);
  const passed = client?.listeners ?? (opts.mode === "check" ? [] : takeListenFds());
  const sorted = sortPassedFds(passed);
  if (sorted.invalid.length > 0) adoptListener(sorted.invalid[0]); // throws the precise error
  forgetStrangers(sorted.strangers, notifier, log);
  const pool = opts.mode === "check" ? null : new ListenerPool(sorted, opts, log);
  // 3. The app: Deno.serve is ours; the main module runs after this preload returns.
  const app = new WorkerApp({
    path: opts.handler,
    pool,
    log,
    // The app shut every server down: stop as after SIGINT (Deno would exit once idle).
    onAllStopped: () => stopped.resolve("app"),
  });
  keepAliveOnAppErrors(log, app);
  installDenoServe(app);
  installDenoUpgradeWebSocket();
  const embedded = embeddedHandler();
  if (embedded !== null) app.useModule(embedded.namespace);
  return {
    opts,
    log,
    notifier,
    sorted,
    pool,
    app,
    stopSignal,
    client,
    loops: null,
    hold: () => isHolding = true,
    tRuntime,
  };
}

/** `apprun check`: the app loaded; say what it serves. */
function reportCheck({ app, opts }: Started): number {
  const n = app.bindings.length;
  console.log(`ok: ${opts.handler} (${n} server${n === 1 ? "" : "s"})`);
  return 0;
}

/** Steps 4–7. Returns the exit status. */
async function serveApp(s: Started): Promise<number> {
  const { log, notifier, sorted, client } = s;
  const tHandler = performance.now();
  // The other loops load the app (each its own instance) before the bundle is read: warm, while
  // the running process still serves; cold, within the pause (~100 ms here for one more loop).
  if ((s.opts.parallel ?? 1) > 1) {
    if (embeddedHandler() !== null) {
      log.warn("--parallel: a compiled app serves on one event loop");
    } else {
      // Loaded only here: one loop (the default) loads none of it.
      const { LoopGroup } = await import("./loops.ts");
      const bindings = s.app.bindings.map((b) => b.listeners);
      s.loops = await LoopGroup.start(s.opts.parallel!, Deno.mainModule, bindings, s.opts, log);
    }
  }
  const tLoops = performance.now();
  // 4. The bundle, now that the app is known to load: from the store, or from the running
  // process (warm: it stops reading only now, and waits for us).
  let bundle: { name: string | null; fd: number; generation: number } | null = sorted.bundle;
  let stoppedAt: number | null = null;
  let prepared: Server | undefined;
  let tGiven = tHandler;
  if (client !== null) {
    client.watchHelper();
    // Ready before asking: the loop running, the handoff's code compiled (not in the pause).
    prepared = prepareServer(s, client.generation + 1);
    await warmUpHandoff();
    s.hold();
    const given = await client.take(s.opts.drainTimeoutMs + TAKE_MARGIN_MS);
    bundle = { name: null, fd: given.fd, generation: given.generation };
    stoppedAt = given.stoppedAt;
    tGiven = performance.now();
  }
  let resumed: Resumed | null = null;
  if (bundle !== null) {
    s.hold();
    try {
      resumed = await readHandoff(bundle.fd, bundle.generation, log, s.opts.maxHandoffStateBytes);
    } catch (err) {
      log.error(
        `handoff bundle ${bundle.name ?? `from pid ${client?.oldPid}`} unreadable, starting ` +
          `without it: ${describeError(err)}`,
      );
    }
  }
  const tBundle = performance.now();
  const generation = bundle?.generation ?? 0;
  // 5. The server, and what was carried.
  let server: Server;
  try {
    s.hold();
    server = await startServers(s, generation, resumed, prepared);
  } catch (err) {
    // We drained the bundle; dying now would lose its connections: put them back. (Warm: the
    // running process still holds them, and takes them back when we are gone.)
    if (resumed !== null && notifier !== null && bundle?.name) {
      await loadStateCodec();
      putBack(resumed, { name: bundle.name, fd: bundle.fd }, notifier, log);
    }
    throw err;
  }
  s.app.callDefaultOnListen();
  const carried = (resumed?.connections.length ?? 0) + (resumed?.idle?.fds.length ?? 0);
  const ms = (n: number) => n.toFixed(1);
  const tServing = performance.now();
  const phases = client === null
    ? `runtime ${ms(s.tRuntime)}, app ${ms(tHandler - s.tRuntime)}, ` +
      (s.loops === null ? "" : `loops ${ms(tLoops - tHandler)}, `) +
      `bundle ${ms(tBundle - tLoops)}, resume ${ms(tServing - tBundle)}`
    : `the bundle came ${ms(tGiven - (stoppedAt! - performance.timeOrigin))} ms after, read ` +
      `${ms(tBundle - tGiven)}, resume ${ms(tServing - tBundle)}`;
  // 6. Ready; then what the previous generation stored is ours to remove.
  if (client !== null) {
    const pauseMs = performance.timeOrigin + tServing - stoppedAt!;
    log.info(
      `took over ${carried} connections from pid ${client.oldPid} as generation ${generation}: ` +
        `serving ${ms(pauseMs)} ms after it stopped reading (${phases})`,
    );
    await client.becomeMain({ carried, pauseMs });
    server.notifyReady(`generation ${generation}, took over ${carried} connections`);
    client.releaseOld();
    closeFd(bundle!.fd);
  } else if (bundle === null) {
    server.notifyReady("");
  } else {
    server.notifyReady(`generation ${generation}, resumed ${carried} connections`);
    removeFromStore(notifier, bundle.name!, log);
    closeFd(bundle.fd);
    const pause = resumed?.createdAt
      ? `; snapshot → ready ${Date.now() - resumed.createdAt} ms`
      : "";
    log.info(
      `resumed ${carried} connections from generation ${generation}: ready ` +
        `${ms(performance.now())} ms after the runtime started (${phases})${pause}`,
    );
  }
  for (const l of s.pool?.unusedStored() ?? []) {
    log.info(`listener ${l.name} from the previous generation is not used any more: closing it`);
    closeFd(l.fd);
    removeFromStore(notifier, listenerStoreName(l.name), log);
  }
  // 7. Serve until told to stop, or taken over.
  return await serveUntilDone(s, server, generation);
}

/**
 * One line (`apprun: …`, as the CLI reports errors) and exit 1; a stack only for a bug. The
 * line is also this process's last `STATUS=`, so the manager can say why it failed (sd_notify(3):
 * "Failed to …"), where its log is not at hand (`apprun upgrade` under a supervisor).
 */
function exitFatal(err: unknown): never {
  const message = err instanceof AppRunError ? err.message : describeError(err);
  reportFailure(
    takeover,
    err instanceof HandlerError ? `the new version does not load: ${message}` : message,
  );
  if (err instanceof AppRunError) writeFatal(message);
  else writeFatal(message, err instanceof Error ? err.stack ?? "" : "");
  try {
    Notifier.fromEnv()?.status(message.split("\n")[0].slice(0, 1000));
  } catch {
    // No manager to tell, or it is gone: the log line is what remains.
  }
  Deno.exit(1);
}

function removeFromStore(notifier: Notifier | null, name: string, log: Logger): void {
  try {
    notifier?.fdstoreRemove(name);
  } catch (err) {
    log.warn(`FDSTOREREMOVE ${name} failed: ${describeError(err)}`);
  }
}
