/**
 * @module
 * The old process's side of a handoff (docs/design.md, "The handoff protocol"): take the
 * connections out of the server (idle ones at once, busy ones when their response is done),
 * record their state, and write one bundle — the same harvest and the same bundle for both
 * transports. The cold one is here: store the bundle (`FDSTORE=1`, `FDPOLL=0`, a
 * per-generation name) with our own listeners, wait with `BARRIER=1` until the manager has it,
 * and close our copies. The warm one (takeover_host.ts) hands the bundle's reading end to the
 * next process directly. Anything that cannot be carried is closed politely instead; nothing is
 * dropped silently.
 *
 * Test hook: `APPRUN_TEST_HANDOFF_FAULT` injects one failure for the handoff tests —
 * `corrupt-state`, `future-version`, `empty-bundle`, `missing-bundle`, `kill-before-store`,
 * `kill-after-store` — so the next process's handling of each is proven with real processes.
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
  sendSignal,
  SHUT_RDWR,
  shutdown,
  SIGNALS,
  SOCK_SEQPACKET,
  socketPair,
} from "../sys/mod.ts";
import { describeError } from "../errors.ts";
import {
  bundleName,
  checkPlainData,
  type ConnectionRecord,
  encodeState,
  listenerStoreName,
  writeBundle,
} from "../handoff/mod.ts";

/** Options for {@linkcode handOff}. */
export interface HandOffOptions {
  server: Server;
  notifier: Notifier;
  /** This process's generation; the bundle is written as generation + 1. */
  generation: number;
  /** Listeners we opened (or took back from the store): stored too, so `--port` servers keep them. */
  ownListeners: Listener[];
  drainTimeoutMs: number;
  log: Logger;
}

/** What a handoff did. */
export interface HandOffReport {
  carried: number;
  /** From SIGTERM to the barrier, ms. */
  durationMs: number;
  /** Time spent waiting for busy connections, ms. */
  drainMs: number;
}

/** A connection taken out of the server with its record. The holder owns `fd`. */
export interface CarriedConnection {
  fd: number;
  record: ConnectionRecord;
}

/** Everything a handoff took out of the server, recorded. The caller owns every fd. */
export interface Harvest {
  connections: CarriedConnection[];
  /** What `onAppHandoff` returned (plain data), or null. */
  app: unknown;
  /** performance.now() when the handoff began. */
  startedAt: number;
  /** Taking the connections out, waiting for busy ones included, ms. */
  drainMs: number;
  /** Recording them, ms. */
  recordMs: number;
}

/** The record of an idle HTTP connection. */
export function recordConnection(d: DetachedConnection): ConnectionRecord {
  return {
    kind: "http",
    buffered: d.buffered,
    local: rawLocalAddr(d.fd),
    peer: rawPeerAddr(d.fd),
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
  server.beginHandoff(drainTimeoutMs);
  const taken = await server.finishHandoff(drainTimeoutMs);
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
  return {
    connections,
    app,
    startedAt,
    drainMs,
    recordMs: performance.now() - startedAt - drainMs,
  };
}

/** A bundle written from a harvest: its reading end (the caller's) and what it cost. */
export interface WrittenBundle {
  fd: number;
  stateBytes: number;
  encodeMs: number;
  writeMs: number;
}

/**
 * Writes `h` as the bundle of `generation`. Throws (HandoffStateError, HandoffBundleError) with
 * nothing left open; the connections stay the caller's either way.
 */
export function bundleHarvest(h: Harvest, generation: number, log: Logger): WrittenBundle {
  const fault = Deno.env.get("APPRUN_TEST_HANDOFF_FAULT") ?? "";
  const t0 = performance.now();
  const encoded = encodeState({
    apprunVersion: APPRUN_VERSION,
    generation,
    createdAt: Date.now(),
    pid: Deno.pid,
    connections: h.connections.map((c) => c.record),
    app: h.app,
  });
  const t1 = performance.now();
  if (fault === "corrupt-state") encoded[encoded.length - 1] ^= 0xff;
  if (fault === "future-version") encoded[5] = 99;
  let fd = writeBundle({ generation, state: encoded, fds: h.connections.map((c) => c.fd) });
  const t2 = performance.now();
  if (fault === "empty-bundle") {
    closeFd(fd);
    const [readEnd, writeEnd] = socketPair(SOCK_SEQPACKET);
    closeFd(writeEnd);
    fd = readEnd;
  }
  const ms = (n: number) => n.toFixed(1);
  log.debug(
    `handoff: ${h.connections.length} connections taken out in ${ms(h.drainMs)} ms, recorded ` +
      `in ${ms(h.recordMs)} ms, state of ${encoded.byteLength} bytes encoded in ${ms(t1 - t0)} ` +
      `ms, bundle written in ${ms(t2 - t1)} ms`,
  );
  return { fd, stateBytes: encoded.byteLength, encodeMs: t1 - t0, writeMs: t2 - t1 };
}

/**
 * The cold handoff: hands every connection to the next process through the fdstore. On a
 * failure to build or store the bundle, the connections are closed (idle ones lose nothing; a
 * partial request is lost) and the error is logged; the caller exits either way.
 */
export async function handOff(opts: HandOffOptions): Promise<HandOffReport> {
  const { notifier, log } = opts;
  const h = await harvest(opts.server, opts.drainTimeoutMs, log);
  const next = opts.generation + 1;
  const fault = Deno.env.get("APPRUN_TEST_HANDOFF_FAULT") ?? "";
  let bundleFd = -1;
  try {
    bundleFd = bundleHarvest(h, next, log).fd;
    if (fault === "kill-before-store") sendSignal(Deno.pid, SIGNALS.SIGKILL);
    // The bundle first: if the store is too small, the connections matter more than listeners.
    if (fault !== "missing-bundle") {
      notifier.fdstore({ name: bundleName(next), fds: [bundleFd], isPollDisabled: true });
    }
    for (const l of opts.ownListeners) {
      notifier.fdstore({ name: listenerStoreName(l.name), fds: [l.fd] });
    }
    if (fault === "kill-after-store") sendSignal(Deno.pid, SIGNALS.SIGKILL);
    if (!notifier.barrier(5000)) log.warn("BARRIER=1 not acknowledged within 5 s");
    return {
      carried: h.connections.length,
      durationMs: performance.now() - h.startedAt,
      drainMs: h.drainMs,
    };
  } catch (err) {
    log.error(
      `handoff failed, closing ${h.connections.length} connections instead: ${describeError(err)}`,
    );
    // The bundle (if written) holds copies: shut the sockets down so clients see an end.
    for (const c of h.connections) shutdown(c.fd, SHUT_RDWR);
    return { carried: 0, durationMs: performance.now() - h.startedAt, drainMs: h.drainMs };
  } finally {
    for (const c of h.connections) closeFd(c.fd);
    if (bundleFd >= 0) closeFd(bundleFd);
  }
}
