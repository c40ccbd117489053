/**
 * @module
 * The worker: the process that serves. Takes its fds (listeners, a handoff bundle, strangers to
 * drop), loads the handler before touching the bundle, resumes carried connections and sessions,
 * reports READY=1 and removes the bundle from the store, serves, and on SIGTERM hands off
 * through the fdstore when there is one — or stops gracefully when there is not (and on
 * SIGINT). Owns the listeners it was given or opened, and closes them before returning.
 */
import { describeError } from "../errors.ts";
import { loadHandler } from "../handler.ts";
import { adoptListener, takeListenFds } from "../listen.ts";
import { handOff } from "./hand_off.ts";
import { sortPassedFds } from "./fds.ts";
import { readHandoff, type Resumed } from "./resume.ts";
import { findHooks } from "../hooks.ts";
import { explainCapacity, queryFdStoreCapacity } from "../fdstore_capacity.ts";
import type { Logger } from "../log.ts";
import { Notifier } from "../notify.ts";
import { Server } from "../server.ts";
import { closeFd, raiseFdLimit } from "../sys/mod.ts";
import type { HttpLimits } from "../http/mod.ts";
import { callOnListen, forgetStrangers, putBack, takeListeners } from "./start.ts";
import {
  followSupervisor,
  keepAliveOnAppErrors,
  startWatchdog,
  waitForStopSignal,
} from "./process.ts";

/** What the worker needs from the command line. */
export interface WorkerOptions {
  /** The handler module; "" or undefined for the handler compiled into this binary. */
  handler: string | undefined;
  port?: number;
  host?: string;
  unix: string[];
  drainTimeoutMs: number;
  limits: Partial<HttpLimits>;
}

/**
 * The worker: takes its fds (listeners, a handoff bundle), loads the handler, resumes carried
 * connections, serves, and on SIGTERM hands off through the fdstore when there is one, or
 * stops gracefully when there is not (and on SIGINT).
 */
export async function runWorker(opts: WorkerOptions, log: Logger): Promise<number> {
  const tRuntime = performance.now(); // since the runtime started: spawn → exec → Deno up
  // Listen from the start: Deno's default action would kill us on a SIGTERM that comes after we
  // drained the bundle (a manager restarting again), and the carried connections with us. While
  // we hold nothing (the handler still loading, a hung import too) a stop signal ends us at once
  // and the bundle stays whole; once we hold something it is answered when we are ready, by
  // handing off (or stopping) as usual.
  let isHolding = false;
  const stopSignal = waitForStopSignal().then((signal) => {
    if (!isHolding) Deno.exit(0);
    return signal;
  });
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
  const tHandler = performance.now();
  const listeners = takeListeners(sorted, opts);
  const ownListeners = listeners.filter((l) => l.isOwned);
  const bundle = sorted.bundle;
  let resumed: Resumed | null = null;
  if (bundle !== null) {
    isHolding = true;
    try {
      resumed = await readHandoff(bundle.fd, bundle.generation, log);
    } catch (err) {
      log.error(
        `handoff bundle ${bundle.name} unreadable, starting without it: ${describeError(err)}`,
      );
    }
  }
  const tBundle = performance.now();
  const generation = bundle?.generation ?? 0;
  const hooks = findHooks(loaded.namespace, loaded.module);
  let server: Server;
  try {
    server = new Server({
      handler: loaded.fetch,
      listeners,
      log,
      notifier,
      limits: opts.limits,
      drainTimeoutMs: opts.drainTimeoutMs,
      hooks,
      generation,
    });
    isHolding = true;
    server.start();
  } catch (err) {
    // DESIGN §3: we drained the bundle; dying now would lose its connections: put them back.
    if (resumed !== null && notifier !== null && bundle !== null) {
      putBack(resumed, bundle, notifier, log);
    }
    throw err;
  }
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
      ? `; snapshot → ready ${Date.now() - resumed.createdAt} ms`
      : "";
    const ms = (n: number) => n.toFixed(1);
    log.info(
      `resumed ${carried} connections from generation ${generation}: ready ` +
        `${ms(performance.now())} ms after the runtime started (runtime ${ms(tRuntime)}, handler ` +
        `${ms(tHandler - tRuntime)}, bundle ${ms(tBundle - tHandler)}, resume ` +
        `${ms(performance.now() - tBundle)})${pause}`,
    );
  }
  const stopWatchdog = startWatchdog(notifier, log);
  const needed = 1 + ownListeners.length;
  const capacity = notifier === null ? Promise.resolve(0) : queryFdStoreCapacity(log).then((c) => {
    explainCapacity(c, needed, log);
    return c;
  });
  const signal = await stopSignal;
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
