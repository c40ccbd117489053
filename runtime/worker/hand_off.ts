/**
 * @module
 * The old process's side of a handoff (docs/design.md, "The handoff protocol"): take the
 * connections out of the server (idle ones at once, busy ones when their response is done),
 * record their state, and write one bundle — the same harvest and the same bundle for both
 * transports. The cold one is here: store the bundle (`FDSTORE=1`, `FDPOLL=0`, a
 * per-generation name) with our own listeners, wait with `BARRIER=1` until the manager has it,
 * and close our copies. The warm one (takeover_host.ts) hands the bundle's reading end to the
 * next process directly. Anything that cannot be carried is closed politely instead; nothing is
 * dropped silently. The state is kept within the budget the next process reads
 * (state_budget.ts).
 */
import { APPRUN_VERSION } from "../version.ts";
import type { Listener } from "../listen.ts";
import type { Logger } from "../log.ts";
import type { Notifier } from "../notify.ts";
import type { DetachedConnection, Server } from "../server.ts";
import {
  closeFd,
  rawLocalAddr,
  rawPeerAddr,
  SHUT_RDWR,
  shutdown,
  SOCK_SEQPACKET,
  socketPair,
} from "../sys/mod.ts";
import { describeError } from "../errors.ts";
import {
  bundleName,
  checkPlainData,
  type ConnectionRecord,
  decodeState,
  encodeState,
  type IdleTable,
  IdleTableBuilder,
  listenerStoreName,
  loadStateCodec,
  MAX_STATE_BYTES,
  readBundle,
  writeBundle,
} from "../handoff/mod.ts";
import { type Carried, fitStateBudget } from "./state_budget.ts";

/** Options for {@linkcode handOff}. */
export interface HandOffOptions {
  server: Server;
  notifier: Notifier;
  /** This process's generation; the bundle is written as generation + 1. */
  generation: number;
  /** Listeners we opened (or took back from the store): stored too, so `--port` servers keep them. */
  ownListeners: Listener[];
  drainTimeoutMs: number;
  /** The largest state the next process reads (default `MAX_STATE_BYTES`). */
  maxStateBytes?: number;
  log: Logger;
  /** What to bundle (default: the harvest of `server`); with several loops, every loop's. */
  harvest?: () => Promise<Harvest>;
}

/** What a handoff did. */
export interface HandOffReport {
  carried: number;
  /** From SIGTERM to the barrier, ms. */
  durationMs: number;
  /** Time spent waiting for busy connections, ms. */
  drainMs: number;
}

/** Idle connections in bulk (handoff/idle_table.ts): fds in table order. The holder owns them. */
export interface CarriedIdle {
  fds: number[];
  table: IdleTable;
}

/** Everything a handoff took out of the server, recorded. The caller owns every fd. */
export interface Harvest {
  /** Sessions and connections with bytes read: one record each. */
  connections: Carried[];
  /** Idle connections with nothing read, in bulk: their fds follow the records' in the bundle. */
  idle: CarriedIdle;
  /** What `onAppHandoff` returned (plain data), or null. */
  app: unknown;
  /** performance.now() when the handoff began. */
  startedAt: number;
  /** Taking the connections out, waiting for busy ones included, ms. */
  drainMs: number;
  /** Recording them, ms. */
  recordMs: number;
}

/** The record of an idle HTTP connection with bytes read (a partial head, pipelined requests). */
export function recordConnection(d: DetachedConnection): ConnectionRecord {
  return {
    kind: "http",
    buffered: d.buffered,
    local: rawLocalAddr(d.fd),
    peer: d.peer ?? rawPeerAddr(d.fd),
    proto: null,
    app: null,
    listener: d.listenerName,
  };
}

/**
 * Takes every connection and session out of `server` (which stops: its loop is gone after
 * this) and records them, with the app's own state. Never throws for one connection.
 */
export async function harvest(
  server: Server,
  drainTimeoutMs: number,
  log: Logger,
): Promise<Harvest> {
  const startedAt = performance.now();
  const codec = loadStateCodec(); // loaded already, unless the handoff came early
  server.beginHandoff(drainTimeoutMs);
  const taken = await server.finishHandoff(drainTimeoutMs);
  await codec;
  const drainMs = performance.now() - startedAt;
  const connections = [
    ...taken.http.map((d) => ({ fd: d.fd, record: recordConnection(d) })),
    ...taken.sessions,
  ];
  let app: unknown = null;
  try {
    app = checkPlainData(server.hooks.onAppHandoff?.() ?? null, "app state");
  } catch (err) {
    log.error(`onAppHandoff failed, carrying no app state: ${describeError(err)}`);
  }
  const recordMs = performance.now() - startedAt - drainMs;
  return { connections, idle: taken.idle, app, startedAt, drainMs, recordMs };
}

/** Every fd of a harvest, in bundle order: the records', then the idle table's. */
export function harvestFds(h: { connections: Carried[]; idle: CarriedIdle }): number[] {
  return [...h.connections.map((c) => c.fd), ...h.idle.fds];
}

/**
 * Runs the state codec once on a small state with every kind of entry, so its code is compiled
 * before a handoff needs it: the first encode or decode in a process took 10–20 ms here (most
 * of it JIT), in the pause. Called while nothing waits (the old process once it serves, the
 * next one while it starts), after {@linkcode loadStateCodec} settled.
 */
function warmUpCodec(): void {
  const peer = new Uint8Array([2, 0, 0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  // Enough entries that the table's loops get compiled, not just interpreted.
  const idle = new IdleTableBuilder();
  for (let i = 0; i < 2048; i++) idle.add(3 + i, "warm-up", peer);
  const record: ConnectionRecord = {
    kind: "http",
    buffered: new Uint8Array(1),
    local: peer,
    peer,
    proto: null,
    app: null,
    listener: "warm-up",
  };
  const state = {
    apprunVersion: APPRUN_VERSION,
    generation: 1,
    createdAt: Date.now(),
    pid: Deno.pid,
    connections: [record],
    app: null,
    idle: idle.build(),
  };
  for (let i = 0; i < 5; i++) decodeState(encodeState(state));
}

/**
 * {@linkcode warmUpCodec}, and a bundle of one fd written and read back: what a warm handoff
 * runs, compiled before one happens. And Deno's timers, which the sessions' drain deadlines use:
 * their first use loads them (10–40 ms, measured), which must not happen in the pause. Once per
 * process: a next process warms up before it takes over, and its serving would again.
 */
export function warmUpHandoff(): Promise<void> {
  return warmedUp ??= warmUp();
}

let warmedUp: Promise<void> | null = null;

async function warmUp(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 0));
  await loadStateCodec();
  warmUpCodec();
  const [a, b] = socketPair(SOCK_SEQPACKET);
  try {
    const state = encodeState({
      apprunVersion: APPRUN_VERSION,
      generation: 1,
      createdAt: Date.now(),
      pid: Deno.pid,
      connections: [],
      app: null,
    });
    const bundle = writeBundle({ generation: 1, state, fds: [a] });
    try {
      const read = await readBundle(bundle, { expectedGeneration: 1 });
      for (const fd of read.fds) closeFd(fd);
    } finally {
      closeFd(bundle);
    }
  } finally {
    closeFd(a);
    closeFd(b);
  }
}

/** A bundle written from a harvest: its reading end (the caller's) and what it cost. */
export interface WrittenBundle {
  fd: number;
  /** Connections in the bundle: the harvest's, less what the state budget left out. */
  carried: number;
  encodeMs: number;
  writeMs: number;
}

/**
 * Writes `h` as the bundle of `generation`, its state within `maxStateBytes` (state_budget.ts:
 * what is left out is told so and shut for writing). Throws (HandoffStateError,
 * HandoffBundleError) with nothing left open; every fd of `h` stays the caller's either way.
 */
export function bundleHarvest(
  h: Harvest,
  generation: number,
  log: Logger,
  maxStateBytes = MAX_STATE_BYTES,
): WrittenBundle {
  const t0 = performance.now();
  const createdAt = Date.now();
  const fitted = fitStateBudget({
    carried: h.connections,
    app: h.app,
    maxBytes: maxStateBytes,
    encode: (connections, app) =>
      encodeState({
        apprunVersion: APPRUN_VERSION,
        generation,
        createdAt,
        pid: Deno.pid,
        connections,
        app,
        // Without idle connections the field is left out: apprun before it reads such a state.
        ...(h.idle.fds.length > 0 ? { idle: h.idle.table } : {}),
      }),
    log,
  });
  const { encoded } = fitted;
  const t1 = performance.now();
  const fds = harvestFds({ connections: fitted.carried, idle: h.idle });
  const fd = writeBundle({ generation, state: encoded, fds });
  const t2 = performance.now();
  const ms = (n: number) => n.toFixed(1);
  log.debug(
    `handoff: ${fds.length} connections taken out in ${ms(h.drainMs)} ms, recorded ` +
      `in ${ms(h.recordMs)} ms, state of ${encoded.byteLength} bytes encoded in ${ms(t1 - t0)} ` +
      `ms, bundle written in ${ms(t2 - t1)} ms`,
  );
  return {
    fd,
    carried: fds.length,
    encodeMs: t1 - t0,
    writeMs: t2 - t1,
  };
}

/**
 * The cold handoff: hands every connection to the next process through the fdstore. On a
 * failure to build or store the bundle, the connections are closed (idle ones lose nothing; a
 * partial request is lost) and the error is logged; the caller exits either way.
 */
export async function handOff(opts: HandOffOptions): Promise<HandOffReport> {
  const { notifier, log } = opts;
  const h = await (opts.harvest?.() ?? harvest(opts.server, opts.drainTimeoutMs, log));
  const next = opts.generation + 1;
  let bundleFd = -1;
  try {
    const bundle = bundleHarvest(h, next, log, opts.maxStateBytes);
    bundleFd = bundle.fd;
    // The bundle first: if the store is too small, the connections matter more than listeners.
    notifier.fdstore({ name: bundleName(next), fds: [bundleFd], isPollDisabled: true });
    for (const l of opts.ownListeners) {
      notifier.fdstore({ name: listenerStoreName(l.name), fds: [l.fd] });
    }
    if (!notifier.barrier(5000)) log.warn("BARRIER=1 not acknowledged within 5 s");
    return {
      carried: bundle.carried,
      durationMs: performance.now() - h.startedAt,
      drainMs: h.drainMs,
    };
  } catch (err) {
    const fds = harvestFds(h);
    log.error(`handoff failed, closing ${fds.length} connections instead: ${describeError(err)}`);
    // The bundle (if written) holds copies: shut the sockets down so clients see an end.
    for (const fd of fds) shutdown(fd, SHUT_RDWR);
    return { carried: 0, durationMs: performance.now() - h.startedAt, drainMs: h.drainMs };
  } finally {
    await opts.server.closed; // it forgot these fds: its epoll fd goes first
    for (const fd of harvestFds(h)) closeFd(fd);
    if (bundleFd >= 0) closeFd(bundleFd);
  }
}
