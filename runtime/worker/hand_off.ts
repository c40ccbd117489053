/**
 * @module
 * The old process's side of a handoff (docs/design.md, "The handoff protocol"): take the connections out of the server
 * (idle ones at once, busy ones when their response is done), record their state, write one
 * bundle, store it (`FDSTORE=1`, `FDPOLL=0`, a per-generation name) with our own listeners,
 * wait with `BARRIER=1` until the manager has it, and close our copies. Anything that cannot
 * be carried is closed politely instead; nothing is dropped silently. The state is kept within
 * the budget the next process reads (state_budget.ts).
 */
import { APPRUN_VERSION } from "../version.ts";
import type { Listener } from "../listen.ts";
import type { Logger } from "../log.ts";
import type { Notifier } from "../notify.ts";
import type { DetachedConnection, Server } from "../server.ts";
import { closeFd, rawLocalAddr, rawPeerAddr, SHUT_RDWR, shutdown } from "../sys/mod.ts";
import { describeError } from "../errors.ts";
import {
  bundleName,
  checkPlainData,
  type ConnectionRecord,
  encodeState,
  listenerStoreName,
  loadStateCodec,
  MAX_STATE_BYTES,
  writeBundle,
} from "../handoff/mod.ts";
import { fitStateBudget } from "./state_budget.ts";

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
}

/** What a handoff did. */
export interface HandOffReport {
  carried: number;
  /** From SIGTERM to the barrier, ms. */
  durationMs: number;
  /** Time spent waiting for busy connections, ms. */
  drainMs: number;
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
 * Hands every connection to the next process through the fdstore. On a failure to build or
 * store the bundle, the connections are closed (idle ones lose nothing; a partial request is
 * lost) and the error is logged; the caller exits either way.
 */
export async function handOff(opts: HandOffOptions): Promise<HandOffReport> {
  const { server, notifier, log } = opts;
  const started = performance.now();
  const codec = loadStateCodec(); // loaded already, unless the handoff came early
  server.beginHandoff(opts.drainTimeoutMs);
  const harvest = await server.finishHandoff(opts.drainTimeoutMs);
  await codec;
  const drainMs = performance.now() - started;
  const detached = [
    ...harvest.http.map((d) => ({ fd: d.fd, record: recordConnection(d) })),
    ...harvest.sessions,
  ];
  let app: unknown = null;
  try {
    app = checkPlainData(server.hooks.onAppHandoff?.() ?? null, "app state");
  } catch (err) {
    log.error(`onAppHandoff failed, carrying no app state: ${describeError(err)}`);
  }
  const next = opts.generation + 1;
  let bundleFd = -1;
  try {
    const createdAt = Date.now();
    const tRecords = performance.now();
    const fitted = fitStateBudget({
      carried: detached,
      app,
      maxBytes: opts.maxStateBytes ?? MAX_STATE_BYTES,
      encode: (connections, app) =>
        encodeState({
          apprunVersion: APPRUN_VERSION,
          generation: next,
          createdAt,
          pid: Deno.pid,
          connections,
          app,
        }),
      log,
    });
    const { encoded } = fitted;
    const tEncoded = performance.now();
    const fds = fitted.carried.map((d) => d.fd);
    bundleFd = writeBundle({ generation: next, state: encoded, fds });
    log.debug(
      `handoff: ${fds.length} connections taken out in ${drainMs.toFixed(1)} ms, recorded in ` +
        `${(tRecords - started - drainMs).toFixed(1)} ms, state of ${encoded.byteLength} bytes ` +
        `encoded in ${(tEncoded - tRecords).toFixed(1)} ms, bundle written in ` +
        `${(performance.now() - tEncoded).toFixed(1)} ms`,
    );
    // The bundle first: if the store is too small, the connections matter more than listeners.
    notifier.fdstore({ name: bundleName(next), fds: [bundleFd], isPollDisabled: true });
    for (const l of opts.ownListeners) {
      notifier.fdstore({ name: listenerStoreName(l.name), fds: [l.fd] });
    }
    if (!notifier.barrier(5000)) log.warn("BARRIER=1 not acknowledged within 5 s");
    return {
      carried: fds.length,
      durationMs: performance.now() - started,
      drainMs,
    };
  } catch (err) {
    log.error(
      `handoff failed, closing ${detached.length} connections instead: ${describeError(err)}`,
    );
    // The bundle (if written) holds copies: shut the sockets down so clients see an end.
    for (const d of detached) shutdown(d.fd, SHUT_RDWR);
    return { carried: 0, durationMs: performance.now() - started, drainMs };
  } finally {
    for (const d of detached) closeFd(d.fd);
    if (bundleFd >= 0) closeFd(bundleFd);
  }
}
