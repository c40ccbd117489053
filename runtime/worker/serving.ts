/**
 * @module
 * The worker once it serves (docs/design.md, "Worker start-up", step 7, and "Warm reload"):
 * starting a server over what was carried, then serving until one of three ends —
 *
 * - a next process takes over (warm): the connections are harvested and bundled as for a cold
 *   handoff, the bundle's reading end goes to it over the takeover socket, and this process
 *   waits, keeping its own copies, until the next one says "exit" (exit 0) or goes away
 *   first (resume the same connections here and serve on: a failed reload loses nothing);
 * - SIGTERM with a usable fdstore (cold): hand off through the store and exit;
 * - SIGINT, a stop without a store, or the app shutting its servers down: graceful stop.
 *
 * Owns the server it starts and the takeover socket; closes the listeners it was given when
 * it leaves (never unlinking a path another process serves on).
 */
import { describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Notifier } from "../notify.ts";
import { Server } from "../server.ts";
import { closeFd } from "../sys/mod.ts";
import { listenerStoreName, receiveTakeover, sendTakeover } from "../handoff/mod.ts";
import { explainCapacity, queryFdStoreCapacity } from "../fdstore_capacity.ts";
import { bundleHarvest, handOff, harvest, harvestFds, warmUpHandoff } from "./hand_off.ts";
import type { Resumed } from "./resume.ts";
import type { ListenerPool } from "./listeners.ts";
import type { WorkerApp } from "./app.ts";
import type { WorkerOptions } from "./options.ts";
import { startWatchdog } from "./process.ts";
import type { LoopGroup } from "./loops.ts";
import {
  runtimeDirectory,
  TakeoverHost,
  type TakeoverOffer,
  type TakeoverRequest,
} from "./takeover_host.ts";

/**
 * How long after READY=1 the handoff's code is loaded and compiled (warmUpHandoff): not on the
 * start's path, nor in the next handoff's pause.
 */
export const WARM_UP_AFTER_MS = 1000;

/** What serving needs from start-up. */
export interface ServingContext {
  opts: WorkerOptions;
  log: Logger;
  notifier: Notifier | null;
  pool: ListenerPool | null;
  app: WorkerApp;
  stopSignal: Promise<"SIGTERM" | "SIGINT" | "app">;
  /** The other event loops (`--parallel`: worker/loops.ts), or null: the main thread's alone. */
  loops: LoopGroup | null;
}

/** What one loop's server needs (a Worker loop has no pool, no notifier, no signals). */
export type LoopContext = Pick<ServingContext, "opts" | "log" | "notifier" | "app">;

/** A server for the app's bindings, its loop running, not accepting yet. */
export function prepareServer(s: LoopContext, generation: number): Server {
  const { log, notifier, app, opts } = s;
  const server = new Server({
    bindings: app.bindings,
    log,
    notifier,
    limits: opts.limits,
    drainTimeoutMs: opts.drainTimeoutMs,
    hooks: app.hooks,
    generation,
  });
  server.startLoop();
  return server;
}

/**
 * A server for the app's bindings (`prepared`, or a new one), started, with `carried` resumed
 * in it (the caller has sent nothing yet: READY=1 is its business). Takes every carried fd.
 */
export function startServer(
  s: LoopContext,
  generation: number,
  carried: Resumed | null,
  prepared?: Server,
): Server {
  const { log, app } = s;
  const server = prepared ?? prepareServer(s, generation);
  app.attach(server);
  if (carried !== null && app.hooks.onAppResume) {
    try {
      app.hooks.onAppResume(carried.app);
    } catch (err) {
      log.error(`onAppResume failed: ${describeError(err)}`);
    }
  }
  for (const c of carried?.connections ?? []) server.resume(c.fd, c.record);
  if (carried?.idle) server.resumeIdle(carried.idle.fds, carried.idle.table);
  // New connections after the carried ones: those are served first.
  server.start();
  return server;
}

/**
 * {@linkcode startServer} on every loop: with several, `carried` is spread over them, the main
 * loop's share served by the server returned. Resolves once every loop serves.
 */
export async function startServers(
  s: ServingContext,
  generation: number,
  carried: Resumed | null,
  prepared?: Server,
): Promise<Server> {
  if (s.loops === null) return startServer(s, generation, carried, prepared);
  const shares = carried === null ? null : s.loops.spread(carried);
  const server = startServer(s, generation, shares?.[0] ?? null, prepared);
  await s.loops.resume(generation, shares?.slice(1) ?? []);
  return server;
}

/** Serves until stopped, handed off or taken over. Returns the exit status. */
export async function serveUntilDone(
  s: ServingContext,
  first: Server,
  generation: number,
): Promise<number> {
  const { log, notifier } = s;
  let server = first;
  const stopWatchdog = startWatchdog(notifier, log);
  const ownListeners = s.pool?.own() ?? [];
  const capacity = notifier === null ? Promise.resolve(0) : queryFdStoreCapacity(log).then((c) => {
    explainCapacity(c, 1 + ownListeners.length, log);
    return c;
  });
  const runtimeDir = notifier === null ? null : runtimeDirectory();
  const host = runtimeDir === null ? null : TakeoverHost.open({
    runtimeDir,
    log,
    offer: () => offerOf(s, server, generation),
  });
  const listeners = s.pool?.all() ?? [];
  // A loop timer: Deno's first setTimeout would load its Node timers (~10–40 ms) right now.
  let stopWarmUp: (() => void) | null = notifier === null
    ? null
    : server.loop.every(WARM_UP_AFTER_MS, () => {
      stopWarmUp?.();
      stopWarmUp = null;
      warmUpHandoff().catch((err) =>
        log.warn(`cannot load the handoff's state codec: ${describeError(err)}`)
      );
    });
  for (;;) {
    const next = await Promise.race([
      s.stopSignal.then((signal) => ({ signal })),
      ...(host === null ? [] : [host.nextRequest().then((request) => ({ request }))]),
    ]);
    stopWarmUp?.();
    stopWarmUp = null;
    if ("request" in next) {
      const outcome = await giveTo(next.request, server, s, generation);
      if (outcome === "gone") {
        host!.close();
        stopWatchdog();
        for (const l of listeners) closeFd(l.fd);
        notifier?.close();
        return 0;
      }
      server = await startServers(s, generation, outcome);
      server.notifyReady("resumed the connections of a failed takeover");
      host!.release(next.request.pid);
      continue;
    }
    host?.close();
    stopWatchdog();
    const isHandoff = await stopOrHandOff(s, server, generation, next.signal, capacity);
    for (const l of listeners) if (isHandoff || !l.isOwned) closeFd(l.fd);
    notifier?.close();
    return 0;
  }
}

/** Every listener, named as a next process must see it (our own ones as the store names them). */
function offerOf(s: ServingContext, server: Server, generation: number): TakeoverOffer | string {
  if (server.state !== "serving") return `the server is ${server.state}`;
  const listeners = (s.pool?.all() ?? []).map((l) => ({
    fd: l.fd,
    name: l.isOwned ? listenerStoreName(l.name) : l.name,
  }));
  // With several loops, this one's count times theirs: a size hint (the next process's fd table).
  const connections = server.connectionCount * (s.loops?.size ?? 1);
  return { generation, listeners, connections };
}

/**
 * The warm handoff to the next process of `request`: harvest, bundle, send; then wait for its
 * "exit" ("gone": our copies are closed) or its going away (the connections to resume here).
 */
async function giveTo(
  request: TakeoverRequest,
  server: Server,
  s: ServingContext,
  generation: number,
): Promise<"gone" | Resumed> {
  const { opts, log, loops } = s;
  const { drainTimeoutMs } = opts;
  const stoppedAt = performance.timeOrigin + performance.now();
  log.info(`pid ${request.pid} takes over: handing over (drain timeout ${drainTimeoutMs} ms)`);
  const h = loops === null
    ? await harvest(server, drainTimeoutMs, log)
    : await loops.harvest(server, drainTimeoutMs, log);
  const next = generation + 1;
  let isSent = false;
  try {
    const bundle = bundleHarvest(h, next, log, opts.maxHandoffStateBytes);
    try {
      sendTakeover(request.fd, { t: "bundle", generation: next, stoppedAt }, [bundle.fd]);
      isSent = true;
    } finally {
      closeFd(bundle.fd);
    }
    const ms = (n: number) => n.toFixed(1);
    log.info(
      `handed ${bundle.carried} connections to pid ${request.pid} in ` +
        `${ms(performance.now() - h.startedAt)} ms (take out ${ms(h.drainMs)}, record ` +
        `${ms(h.recordMs)}, encode ${ms(bundle.encodeMs)}, bundle ${ms(bundle.writeMs)} ms)`,
    );
  } catch (err) {
    log.error(`takeover by pid ${request.pid} failed: ${describeError(err)}`);
  }
  const answer = isSent
    ? await receiveTakeover(request.fd, -1).catch(() => "closed" as const)
    : null;
  closeFd(request.fd);
  await server.closed; // it forgot the fds it gave up: its epoll fd goes before our copies
  if (answer !== null && answer !== "closed" && answer.message.t === "exit") {
    for (const fd of harvestFds(h)) closeFd(fd);
    log.info(`pid ${request.pid} took over: exiting`);
    return "gone";
  }
  log.warn(
    `pid ${request.pid} did not take over: resuming its ${harvestFds(h).length} connections here`,
  );
  return {
    generation,
    connections: h.connections,
    idle: h.idle,
    app: h.app,
    createdAt: null,
    dropped: 0,
    fallback: null,
  };
}

/** SIGTERM with a store: the cold handoff; otherwise a graceful stop. Whether it handed off. */
async function stopOrHandOff(
  s: ServingContext,
  server: Server,
  generation: number,
  signal: "SIGTERM" | "SIGINT" | "app",
  capacity: Promise<number>,
): Promise<boolean> {
  const { log, notifier, opts, loops } = s;
  try {
    notifier?.stopping();
  } catch (err) {
    log.warn(`sd_notify failed: ${describeError(err)}`);
  }
  const nap = server.loop.sleep(500); // not setTimeout: Deno's first timer costs 10–40 ms
  const room = await Promise.race([capacity, nap.promise.then(() => -1)]);
  nap.cancel();
  const ownListeners = s.pool?.own() ?? [];
  if (signal === "SIGTERM" && notifier !== null && room !== 0) {
    log.info(`SIGTERM: handing off (drain timeout ${opts.drainTimeoutMs} ms)`);
    const report = await handOff({
      server,
      notifier,
      generation,
      ownListeners,
      drainTimeoutMs: opts.drainTimeoutMs,
      maxStateBytes: opts.maxHandoffStateBytes,
      log,
      harvest: loops === null ? undefined : () => loops.harvest(server, opts.drainTimeoutMs, log),
    });
    log.info(
      `handed off ${report.carried} connections as generation ${generation + 1} in ` +
        `${report.durationMs.toFixed(1)} ms (drain ${report.drainMs.toFixed(1)} ms)`,
    );
    return true;
  }
  const why = signal === "app" ? "the app shut its servers down" : signal;
  log.info(`${why}: stopping (drain timeout ${opts.drainTimeoutMs} ms)`);
  server.stopAccepting();
  await loops?.stopAccepting();
  // New connections on a listener we opened would wait in its backlog and be reset at exit:
  // close it now so they are refused. A manager's listener keeps them for the next start.
  for (const l of ownListeners) closeFd(l.fd);
  await Promise.all([server.shutdown(), loops?.shutdown()]);
  log.info("stopped");
  return false;
}
