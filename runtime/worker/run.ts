/**
 * @module
 * The worker: the process that serves, under systemd, a socket activator or apprun's own
 * supervisor. It is started as `deno run --preload entry.ts APP` (worker/command.ts), so the
 * app is Deno's main module and this code runs first. Start-up, in this order
 * (docs/design.md, "Worker start-up"):
 *
 *   1. process duties: stop signals, app errors, following the supervisor, SIGHUP as a reload
 *      request, sd_notify, fd limit
 *   2. sort the passed fds: listeners, the newest handoff bundle, strangers (closed, removed)
 *   3. install `Deno.serve` (and `Deno.upgradeWebSocket`) and let the app's main module run until it is loaded — a failure
 *      here is one line and exit 1, with the bundle untouched for the rollback
 *   4. read the bundle: the carried connections and their state
 *   5. start the server on the app's listeners and resume what was carried
 *   6. READY=1, then remove the bundle (and stored listeners no server took) from the store
 *   7. serve until SIGTERM (hand off through the fdstore) or SIGINT (graceful stop); exit
 *
 * Owns the listeners it was given or opened, and closes them before it exits.
 */
import { AppRunError, describeError } from "../errors.ts";
import { createLogger, type Logger, writeFatal } from "../log.ts";
import { adoptListener, takeListenFds } from "../listen.ts";
import { Notifier } from "../notify.ts";
import { Server } from "../server.ts";
import { closeFd, raiseFdLimit } from "../sys/mod.ts";
import { installDenoServe, installDenoUpgradeWebSocket } from "../deno/mod.ts";
import { listenerStoreName, loadStateCodec } from "../handoff/mod.ts";
import { embeddedHandler } from "../handler.ts";
import { explainCapacity, queryFdStoreCapacity } from "../fdstore_capacity.ts";
import { handOff } from "./hand_off.ts";
import { type SortedFds, sortPassedFds } from "./fds.ts";
import { readHandoff, type Resumed } from "./resume.ts";
import { forgetStrangers, putBack } from "./start.ts";
import { ListenerPool } from "./listeners.ts";
import { WorkerApp } from "./app.ts";
import type { WorkerOptions } from "./options.ts";
import {
  followSupervisor,
  keepAliveOnAppErrors,
  reloadOnHangup,
  startWatchdog,
  waitForStopSignal,
} from "./process.ts";

/** How long after READY=1 the handoff's state encoder is loaded (not on the start's path). */
const CODEC_WARM_UP_MS = 1000;

/** What the start-up steps pass on. */
interface Started {
  opts: WorkerOptions;
  log: Logger;
  notifier: Notifier | null;
  sorted: SortedFds;
  pool: ListenerPool | null;
  app: WorkerApp;
  stopSignal: Promise<"SIGTERM" | "SIGINT" | "app">;
  /** Set once the worker holds carried connections: a stop signal is then a handoff. */
  hold(): void;
  tRuntime: number;
}

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
  const supervisorPid = followSupervisor(log);
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
  // 2. The passed fds, before the app can see LISTEN_FDS.
  const sorted = sortPassedFds(opts.mode === "check" ? [] : takeListenFds());
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
  const { log, notifier, sorted, app, opts } = s;
  const tHandler = performance.now();
  // 4. The bundle, now that the app is known to load.
  const bundle = sorted.bundle;
  let resumed: Resumed | null = null;
  if (bundle !== null) {
    s.hold();
    try {
      resumed = await readHandoff(bundle.fd, bundle.generation, log, opts.maxHandoffStateBytes);
    } catch (err) {
      log.error(
        `handoff bundle ${bundle.name} unreadable, starting without it: ${describeError(err)}`,
      );
    }
  }
  const tBundle = performance.now();
  const generation = bundle?.generation ?? 0;
  // 5. The server, and what was carried.
  let server: Server;
  try {
    server = new Server({
      bindings: app.bindings,
      log,
      notifier,
      limits: opts.limits,
      drainTimeoutMs: opts.drainTimeoutMs,
      hooks: app.hooks,
      generation,
    });
    s.hold();
    server.start();
    app.attach(server);
  } catch (err) {
    // We drained the bundle; dying now would lose its connections: put them back.
    if (resumed !== null && notifier !== null && bundle !== null) {
      await loadStateCodec();
      putBack(resumed, bundle, notifier, log);
    }
    throw err;
  }
  if (resumed !== null && app.hooks.onAppResume) {
    try {
      app.hooks.onAppResume(resumed.app);
    } catch (err) {
      log.error(`onAppResume failed: ${describeError(err)}`);
    }
  }
  for (const c of resumed?.connections ?? []) server.resume(c.fd, c.record);
  app.callDefaultOnListen();
  // 6. Ready; then what the previous generation stored is ours to remove.
  const carried = resumed?.connections.length ?? 0;
  server.notifyReady(bundle ? `generation ${generation}, resumed ${carried} connections` : "");
  if (bundle !== null) {
    removeFromStore(notifier, bundle.name, log);
    closeFd(bundle.fd);
    const ms = (n: number) => n.toFixed(1);
    const pause = resumed?.createdAt
      ? `; snapshot → ready ${Date.now() - resumed.createdAt} ms`
      : "";
    log.info(
      `resumed ${carried} connections from generation ${generation}: ready ` +
        `${ms(performance.now())} ms after the runtime started (runtime ${ms(s.tRuntime)}, app ` +
        `${ms(tHandler - s.tRuntime)}, bundle ${ms(tBundle - tHandler)}, resume ` +
        `${ms(performance.now() - tBundle)})${pause}`,
    );
  }
  for (const l of s.pool?.unusedStored() ?? []) {
    log.info(`listener ${l.name} from the previous generation is not used any more: closing it`);
    closeFd(l.fd);
    removeFromStore(notifier, listenerStoreName(l.name), log);
  }
  // 7. Serve until told to stop.
  return await serveUntilStopped(s, server, generation);
}

/** Step 7: waits for the stop signal, then hands off or stops. Returns the exit status. */
async function serveUntilStopped(s: Started, server: Server, generation: number): Promise<number> {
  const { log, notifier, opts } = s;
  const stopWatchdog = startWatchdog(notifier, log);
  const ownListeners = s.pool?.own() ?? [];
  const capacity = notifier === null ? Promise.resolve(0) : queryFdStoreCapacity(log).then((c) => {
    explainCapacity(c, 1 + ownListeners.length, log);
    return c;
  });
  // The state encoder, loaded once serving has settled, so a handoff does not wait for it (a
  // loop timer: Deno's first setTimeout would load its Node timers, ~10–40 ms, right now).
  let stopWarmUp: (() => void) | null = notifier === null ? null : server.loop.every(
    CODEC_WARM_UP_MS,
    () => {
      stopWarmUp?.();
      stopWarmUp = null;
      loadStateCodec().catch((err) =>
        log.warn(`cannot load the state codec: ${describeError(err)}`)
      );
    },
  );
  const signal = await s.stopSignal;
  stopWarmUp?.();
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
  const listeners = s.pool?.all() ?? [];
  if (isHandoff) {
    log.info(`SIGTERM: handing off (drain timeout ${opts.drainTimeoutMs} ms)`);
    const report = await handOff({
      server,
      notifier: notifier!,
      generation,
      ownListeners,
      drainTimeoutMs: opts.drainTimeoutMs,
      maxStateBytes: opts.maxHandoffStateBytes,
      log,
    });
    log.info(
      `handed off ${report.carried} connections as generation ${generation + 1} in ` +
        `${report.durationMs.toFixed(1)} ms (drain ${report.drainMs.toFixed(1)} ms)`,
    );
  } else {
    const why = signal === "app" ? "the app shut its servers down" : signal;
    log.info(`${why}: stopping (drain timeout ${opts.drainTimeoutMs} ms)`);
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

/**
 * One line (`apprun: …`, as the CLI reports errors) and exit 1; a stack only for a bug. The
 * line is also this process's last `STATUS=`, so the manager can say why it failed (sd_notify(3):
 * "Failed to …"), where its log is not at hand (`apprun upgrade` under a supervisor).
 */
function exitFatal(err: unknown): never {
  const message = err instanceof AppRunError ? err.message : describeError(err);
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
