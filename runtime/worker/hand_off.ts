/**
 * @module
 * The old process's side of a handoff (docs/design.md, "The handoff protocol"): take the connections out of the server
 * (idle ones at once, busy ones when their response is done), record their state, write one
 * bundle, store it (`FDSTORE=1`, `FDPOLL=0`, a per-generation name) with our own listeners,
 * wait with `BARRIER=1` until the manager has it, and close our copies. Anything that cannot
 * be carried is closed politely instead; nothing is dropped silently.
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
  type HandoffState,
  listenerStoreName,
  loadStateCodec,
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
    const state: HandoffState = {
      apprunVersion: APPRUN_VERSION,
      generation: next,
      createdAt: Date.now(),
      pid: Deno.pid,
      connections: detached.map((d) => d.record),
      app,
    };
    const fault = Deno.env.get("APPRUN_TEST_HANDOFF_FAULT") ?? "";
    const tRecords = performance.now();
    const encoded = encodeState(state);
    const tEncoded = performance.now();
    if (fault === "corrupt-state") encoded[encoded.length - 1] ^= 0xff;
    if (fault === "future-version") encoded[5] = 99;
    bundleFd = writeBundle({ generation: next, state: encoded, fds: detached.map((d) => d.fd) });
    log.debug(
      `handoff: ${detached.length} connections taken out in ${
        drainMs.toFixed(1)
      } ms, recorded in ` +
        `${(tRecords - started - drainMs).toFixed(1)} ms, state of ${encoded.byteLength} bytes ` +
        `encoded in ${(tEncoded - tRecords).toFixed(1)} ms, bundle written in ` +
        `${(performance.now() - tEncoded).toFixed(1)} ms`,
    );
    if (fault === "empty-bundle") {
      closeFd(bundleFd);
      const [readEnd, writeEnd] = socketPair(SOCK_SEQPACKET);
      closeFd(writeEnd);
      bundleFd = readEnd;
    }
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
      carried: detached.length,
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
