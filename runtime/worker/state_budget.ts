/**
 * @module
 * The handoff state's size budget, kept by the writer (docs/design.md, "The handoff protocol"):
 * the next process does not read a state over its `maxStateBytes` (it serves the fds as plain
 * HTTP instead), so the old process makes its state fit before writing it — or a few clients,
 * each holding a large partial WebSocket message, would cost every carried connection its
 * state. Over the budget, an app state that alone does not fit is dropped (one error line);
 * then the largest records go first, until the state fits — never the rest. A connection left
 * out is told so on its own fd (WebSocket close 1012 "service restart", so its client
 * reconnects; an SSE stream's last chunk; an HTTP connection just its FIN) and shut for
 * writing; the caller still closes every fd, carried or not.
 */
import { type ConnectionRecord, MAX_PLAIN_DEPTH } from "../handoff/mod.ts";
import { LAST_CHUNK } from "../http/mod.ts";
import { CLOSE_CODE, encodeClose } from "../ws/mod.ts";
import { MSG_DONTWAIT, MSG_NOSIGNAL, sendMessage, SHUT_WR, shutdown } from "../sys/mod.ts";
import type { Logger } from "../log.ts";

/** A connection taken out for the next process. The caller owns `fd`. */
export interface Carried {
  fd: number;
  record: ConnectionRecord;
}

/** Options for {@linkcode fitStateBudget}. */
export interface StateBudgetOptions {
  /** In record order. */
  carried: readonly Carried[];
  /** The app's process-level state (onAppHandoff), already checked as plain data. */
  app: unknown;
  maxBytes: number;
  /** Encodes the state of these records and app state (the caller adds the rest). */
  encode(records: ConnectionRecord[], app: unknown): Uint8Array;
  log: Logger;
}

/** A state that fits, and what was left out to make it fit. */
export interface FittedState {
  encoded: Uint8Array;
  /** In record order: their fds go into the bundle. */
  carried: Carried[];
  /** Told and shut for writing; the caller closes their fds. */
  left: Carried[];
  app: unknown;
}

/** Encodes the state within `maxBytes`, leaving out what must go (see the module comment). */
export function fitStateBudget(opts: StateBudgetOptions): FittedState {
  const { maxBytes, log } = opts;
  let carried = [...opts.carried];
  let app = opts.app;
  let encoded = opts.encode(carried.map((c) => c.record), app);
  if (encoded.byteLength <= maxBytes) return { encoded, carried, left: [], app };
  log.error(
    `handoff state of ${encoded.byteLength} bytes is over the budget of ${maxBytes} ` +
      `(--max-handoff-state): leaving out what makes it so`,
  );
  if (app !== null && opts.encode([], app).byteLength > maxBytes) {
    log.error("the app state (onAppHandoff) alone is over the budget: carrying none");
    app = null;
    encoded = opts.encode(carried.map((c) => c.record), app);
  }
  const left: Carried[] = [];
  // Largest first; each round leaves out at least the estimated excess, then checks again.
  const bySize = carried.map((c) => ({ c, size: sizeOf(c.record, 0) }))
    .sort((a, b) => b.size - a.size);
  while (encoded.byteLength > maxBytes && bySize.length > 0) {
    let excess = encoded.byteLength - maxBytes;
    while (excess > 0 && bySize.length > 0) {
      const { c, size } = bySize.shift()!;
      left.push(c);
      excess -= size;
      log.warn(
        `${describe(c)} not carried: its record of about ${size} bytes is over the budget: ` +
          `${c.record.kind === "ws" ? "closing 1012" : "closing"}`,
      );
    }
    const out = new Set(left);
    carried = carried.filter((c) => !out.has(c));
    encoded = opts.encode(carried.map((c) => c.record), app);
  }
  for (const c of left) sayGoodbye(c);
  return { encoded, carried, left, app };
}

function describe({ fd, record }: Carried): string {
  const kind = record.kind === "ws" ? "WebSocket" : record.kind === "sse" ? "SSE stream" : "HTTP";
  return `${kind} fd ${fd}`;
}

/** What a connection left out is told before its FIN. */
function farewellOf(record: ConnectionRecord): Uint8Array | null {
  if (record.kind === "ws") {
    // RFC 6455 §7.4 / IANA 1012: the server restarts; the client may reconnect at once. Not
    // 1009: its message was not too big for the server, only for the handoff.
    return encodeClose({ code: CLOSE_CODE.SERVICE_RESTART, reason: "service restart" });
  }
  const framing = (record.proto as { framing?: unknown } | null)?.framing;
  if (record.kind === "sse" && framing === "chunked") return LAST_CHUNK;
  return null;
}

/**
 * Writes the farewell without blocking (a client that does not read gets none) and shuts the
 * socket for writing, so the client sees the end in order.
 */
function sayGoodbye({ fd, record }: Carried): void {
  const bytes = farewellOf(record);
  try {
    if (bytes !== null) {
      sendMessage({ fd, data: bytes, flags: MSG_DONTWAIT | MSG_NOSIGNAL });
    }
    shutdown(fd, SHUT_WR);
  } catch {
    // The peer is gone already.
  }
}

/**
 * About how many bytes `value` takes in the encoded state: its bytes and strings, plus a few
 * per item. An estimate only, to order records and size a round; the encoder has the last word.
 */
function sizeOf(value: unknown, depth: number): number {
  if (value instanceof Uint8Array) return value.byteLength + 9;
  if (typeof value === "string") return value.length + 9;
  if (value === null || typeof value !== "object" || depth > MAX_PLAIN_DEPTH) return 9;
  let size = 9;
  if (Array.isArray(value)) { for (const item of value) size += sizeOf(item, depth + 1); }
  else {
    for (const [key, item] of Object.entries(value)) size += key.length + sizeOf(item, depth + 1);
  }
  return size;
}
