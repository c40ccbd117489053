/**
 * @module
 * The new process's side of a handoff (docs/design.md, "The handoff protocol"): read the bundle, check its header and state
 * (magic, version, generation, checksum), cross-check each recorded TCP fd against its recorded
 * addresses (idle connections carried in bulk are checked when first readable: server.ts),
 * and return the connections to resume. Invalid or foreign state costs one clear log
 * line and falls back to the safest resume: every fd served as an idle HTTP connection. It
 * never closes the bundle fd (the caller removes it from the store once READY=1 is sent); the
 * connection fds it returns are the caller's.
 */
import type { Logger } from "../log.ts";
import { closeFd, rawLocalAddr, rawPeerAddr } from "../sys/mod.ts";
import { describeError } from "../errors.ts";
import {
  type ConnectionRecord,
  decodeState,
  isSameAddress,
  loadStateDecoder,
  readBundle,
} from "../handoff/mod.ts";
import type { CarriedIdle } from "./hand_off.ts";

/** A connection to resume. The caller owns `fd`. */
export interface ResumedConnection {
  fd: number;
  record: ConnectionRecord;
}

/** What the bundle held. */
export interface Resumed {
  generation: number;
  connections: ResumedConnection[];
  /** Idle connections in bulk (resumed lazily), or null. The caller owns the fds. */
  idle: CarriedIdle | null;
  /** Process-level app state, or null. */
  app: unknown;
  /** When the old process took its snapshot (ms since the epoch), or null when unknown. */
  createdAt: number | null;
  /** Connections dropped by the address cross-check. */
  dropped: number;
  /** Why the state could not be used (fell back to bare HTTP), or null. */
  fallback: string | null;
}

function bareRecord(): ConnectionRecord {
  return {
    kind: "http",
    buffered: new Uint8Array(0),
    local: null,
    peer: null,
    proto: null,
    app: null,
    listener: null,
  };
}

/**
 * Reads the bundle on `fd` stored as `generation`. Throws only when not even the fds could be
 * recovered (a truncated or foreign bundle: nothing to resume; the caller logs and goes on).
 */
export async function readHandoff(
  fd: number,
  generation: number,
  log: Logger,
  maxStateBytes?: number,
): Promise<Resumed> {
  const t0 = performance.now();
  const decoder = loadStateDecoder(); // while the bundle is read
  const contents = await readBundle(fd, { expectedGeneration: generation, maxStateBytes });
  await decoder;
  const t1 = performance.now();
  const fds = contents.fds;
  let records: ConnectionRecord[] | null = null;
  let idle: CarriedIdle | null = null;
  let app: unknown = null;
  let createdAt: number | null = null;
  let fallback: string | null = null;
  if (contents.state === null) {
    fallback = contents.stateError?.message ?? "no state";
  } else {
    try {
      const state = decodeState(contents.state, { expectedGeneration: generation });
      const listed = state.connections.length + (state.idle?.listener.length ?? 0);
      if (listed !== fds.length) {
        fallback = `state lists ${listed} connections, bundle has ${fds.length} fds`;
      } else {
        records = state.connections;
        if (state.idle) idle = { fds: fds.slice(records.length), table: state.idle };
        app = state.app;
        createdAt = state.createdAt;
      }
    } catch (err) {
      fallback = describeError(err);
    }
  }
  const t2 = performance.now();
  if (fallback !== null) {
    log.error(
      `handoff state of generation ${generation} rejected (${fallback}): serving its ${fds.length} connections as plain HTTP`,
    );
  }
  const connections: ResumedConnection[] = [];
  let dropped = 0;
  fds.slice(0, fds.length - (idle?.fds.length ?? 0)).forEach((cfd, i) => {
    const record = records?.[i] ?? bareRecord();
    if (records !== null && !checkAddresses(cfd, record)) {
      log.warn(`fd ${cfd}: addresses differ from the handoff record: closing it`);
      closeFd(cfd);
      dropped++;
      return;
    }
    connections.push({ fd: cfd, record });
  });
  log.debug(
    `bundle of generation ${generation}: ${fds.length} fds read in ${(t1 - t0).toFixed(1)} ms, ` +
      `state decoded in ${(t2 - t1).toFixed(1)} ms, addresses checked in ` +
      `${(performance.now() - t2).toFixed(1)} ms`,
  );
  return { generation, connections, idle, app, createdAt, dropped, fallback };
}

function checkAddresses(fd: number, record: ConnectionRecord): boolean {
  try {
    return isSameAddress(rawLocalAddr(fd), record.local) &&
      isSameAddress(rawPeerAddr(fd), record.peer);
  } catch {
    // The peer may have reset while stored: the connection will see it on first read.
    return true;
  }
}
