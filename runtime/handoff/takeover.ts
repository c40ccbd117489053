/**
 * @module
 * The warm takeover's messages (docs/design.md, "Warm reload"): what the next process (N), the
 * running one (O) and the reload helper that started N (C) say to each other over unix
 * SOCK_SEQPACKET sockets, each message one packet with its fds (SCM_RIGHTS). The connections
 * themselves travel as one handoff bundle (bundle.ts), whose reading end is the one fd of a
 * `bundle` message: the same format as through the fdstore, only the carrier differs.
 *
 *     N → O  hello {pid}                 O → N  offer {generation, listeners, connections} + fds
 *                                        O → N  refuse {why}
 *     N → O  take                        O → N  bundle {generation, stoppedAt} + its reading end
 *     N → C  resumed {pid, carried, …}   C → N  main          (N is the manager's main pid)
 *     N → C  failed {why}
 *     N → O  exit
 *
 * A packet: magic `APRT`, version u8 (1), then one JSON object (≤ 60 KiB). The decoder checks
 * every field and the fd count each kind must carry before the caller sees anything, and
 * closes the fds of a packet it refuses. Owns no fd: what a message carries is the caller's.
 */
import { AppRunError } from "../errors.ts";
import {
  closeFd,
  E,
  MSG_DONTWAIT,
  pollFds,
  pollFdsSync,
  POLLIN,
  POLLOUT,
  receiveMessage,
  SCM_MAX_FD,
  sendMessage,
  SysError,
} from "../sys/mod.ts";

/** The message format version this binary speaks. */
export const TAKEOVER_VERSION = 1;
const MAGIC = [0x41, 0x50, 0x52, 0x54]; // "APRT"
const MAX_PACKET = 60 * 1024;
const MAX_TEXT = 16 * 1024;

/** Every message of the takeover. */
export type TakeoverMessage =
  | { t: "hello"; pid: number }
  | { t: "offer"; generation: number; listeners: string[]; connections: number }
  | { t: "refuse"; why: string }
  | { t: "take" }
  | { t: "bundle"; generation: number; stoppedAt: number }
  | { t: "exit" }
  | { t: "resumed"; pid: number; carried: number; pauseMs: number }
  | { t: "failed"; why: string }
  | { t: "main" };

/** A received message and the fds it carried (the caller's). */
export interface TakeoverPacket {
  message: TakeoverMessage;
  fds: number[];
}

/** A takeover message that cannot be trusted, or a peer that went away or fell silent. */
export class TakeoverError extends AppRunError {
  override name = "TakeoverError";
  constructor(message: string, options?: ErrorOptions) {
    super("ERR_TAKEOVER", message, options);
  }
}

/** Encodes `message` as one packet. */
export function encodeTakeover(message: TakeoverMessage): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(message));
  const out = new Uint8Array(5 + json.byteLength);
  out.set(MAGIC, 0);
  out[4] = TAKEOVER_VERSION;
  out.set(json, 5);
  if (out.byteLength > MAX_PACKET) {
    throw new TakeoverError(`takeover message "${message.t}" is ${out.byteLength} bytes`);
  }
  return out;
}

const isCount = (v: unknown, max = 0x7fffffff): v is number =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= 0 && v <= max;
const isText = (v: unknown): v is string => typeof v === "string" && v.length <= MAX_TEXT;

/** The fds each kind carries: a number, or "listeners" (one per listener name). */
function fdsOf(m: TakeoverMessage): number {
  return m.t === "offer" ? m.listeners.length : m.t === "bundle" ? 1 : 0;
}

/**
 * Decodes one packet that carried `fdCount` fds. Throws {@linkcode TakeoverError} naming the
 * problem for anything but a well-formed message of version 1 with the fds its kind carries.
 */
export function decodeTakeover(bytes: Uint8Array, fdCount: number): TakeoverMessage {
  if (bytes.byteLength < 5 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new TakeoverError(`not a takeover message (${bytes.byteLength} bytes)`);
  }
  if (bytes[4] !== TAKEOVER_VERSION) {
    throw new TakeoverError(
      `takeover message version ${bytes[4]}: this apprun speaks version ${TAKEOVER_VERSION}`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(5)));
  } catch (err) {
    throw new TakeoverError("takeover message is not JSON", { cause: err });
  }
  const m = value as Record<string, unknown>;
  const bad = (what: string): never => {
    throw new TakeoverError(`takeover message ${JSON.stringify(m?.t)}: ${what}`);
  };
  if (typeof m !== "object" || m === null || Array.isArray(m)) bad("not an object");
  const fields: Record<string, string[]> = {
    hello: ["pid"],
    offer: ["generation", "listeners", "connections"],
    refuse: ["why"],
    take: [],
    bundle: ["generation", "stoppedAt"],
    exit: [],
    resumed: ["pid", "carried", "pauseMs"],
    failed: ["why"],
    main: [],
  };
  const expected = fields[m.t as string];
  if (typeof m.t !== "string" || expected === undefined) bad("unknown kind");
  const keys = Object.keys(m).filter((k) => k !== "t");
  if (keys.length !== expected.length || keys.some((k) => !expected.includes(k))) {
    bad(`fields ${keys.join(",")}, expected ${expected.join(",")}`);
  }
  if ("pid" in m && !isCount(m.pid) || m.pid === 0) bad("pid");
  if ("generation" in m && !isCount(m.generation, Number.MAX_SAFE_INTEGER)) bad("generation");
  if ("carried" in m && !isCount(m.carried)) bad("carried");
  if ("connections" in m && !isCount(m.connections, 1 << 20)) bad("connections");
  const isTime = (v: unknown) => typeof v === "number" && Number.isFinite(v) && v >= 0;
  if ("stoppedAt" in m && !isTime(m.stoppedAt)) bad("stoppedAt");
  if ("pauseMs" in m && !isTime(m.pauseMs)) bad("pauseMs");
  if ("why" in m && !isText(m.why)) bad("why");
  if ("listeners" in m) {
    const l = m.listeners;
    if (!Array.isArray(l) || l.length > SCM_MAX_FD || !l.every((n) => isText(n) && n !== "")) {
      bad("listeners");
    }
  }
  const message = m as TakeoverMessage;
  if (fdsOf(message) !== fdCount) bad(`carried ${fdCount} fds, expected ${fdsOf(message)}`);
  return message;
}

/**
 * Sends `message` with `fds` (still the caller's) on `fd`, waiting up to `timeoutMs` for room.
 * Throws {@linkcode TakeoverError} when the peer is gone or does not make room in time.
 */
export function sendTakeover(
  fd: number,
  message: TakeoverMessage,
  fds: readonly number[] = [],
  timeoutMs = 5000,
): void {
  const data = encodeTakeover(message);
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    let rc: number | "again";
    try {
      rc = sendMessage({ fd, data, fds, flags: MSG_DONTWAIT });
    } catch (err) {
      if (err instanceof SysError && err.errno === E.EINTR) continue;
      throw new TakeoverError(`sending "${message.t}" failed`, { cause: err });
    }
    if (rc !== "again") return;
    const left = deadline - performance.now();
    if (left <= 0 || pollFdsSync([{ fd, events: POLLOUT }], left)[0] === 0) {
      throw new TakeoverError(`no room to send "${message.t}" within ${timeoutMs} ms`);
    }
  }
}

/**
 * Receives the next message on `fd` within `timeoutMs` (-1: no limit). Resolves with "closed"
 * when the peer went away; throws {@linkcode TakeoverError} on timeout or a refused packet
 * (whose fds are closed).
 */
export async function receiveTakeover(
  fd: number,
  timeoutMs: number,
): Promise<TakeoverPacket | "closed"> {
  const deadline = timeoutMs < 0 ? Infinity : performance.now() + timeoutMs;
  for (;;) {
    const got = receiveNow(fd);
    if (got !== "again") return got;
    const left = deadline === Infinity ? -1 : deadline - performance.now();
    if (left !== -1 && left <= 0) throw new TakeoverError(`no message within ${timeoutMs} ms`);
    await pollFds([{ fd, events: POLLIN }], left);
  }
}

/** {@linkcode receiveTakeover}, blocking: for a handshake before the app runs. */
export function receiveTakeoverSync(fd: number, timeoutMs: number): TakeoverPacket | "closed" {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const got = receiveNow(fd);
    if (got !== "again") return got;
    const left = deadline - performance.now();
    if (left <= 0) throw new TakeoverError(`no message within ${timeoutMs} ms`);
    pollFdsSync([{ fd, events: POLLIN }], left);
  }
}

function receiveNow(fd: number): TakeoverPacket | "closed" | "again" {
  let got;
  try {
    got = receiveMessage({ fd, maxBytes: MAX_PACKET + 1, flags: MSG_DONTWAIT });
  } catch (err) {
    if (err instanceof SysError && err.errno === E.EINTR) return "again";
    if (err instanceof SysError && err.errno === E.ECONNRESET) return "closed";
    throw new TakeoverError("receiving a takeover message failed", { cause: err });
  }
  if (got === "again") return "again";
  if (got.data.byteLength === 0 && got.fds.length === 0) return "closed";
  try {
    if (got.isControlTruncated) throw new TakeoverError("the kernel dropped fds of a message");
    if (got.data.byteLength > MAX_PACKET) throw new TakeoverError("takeover message too long");
    return { message: decodeTakeover(got.data, got.fds.length), fds: got.fds };
  } catch (err) {
    for (const f of got.fds) closeFd(f);
    throw err;
  }
}
