/**
 * @module
 * The handoff bundle (docs/design.md, "The handoff protocol"): one AF_UNIX SOCK_SEQPACKET socketpair end that carries a
 * header, the sealed state memfd and every connection fd, so the fdstore holds one fd instead
 * of thousands. Writes and reads the bundle; knows nothing of the state's contents (codec.ts)
 * or of the fdstore (the caller sends `FDSTORE=1`).
 *
 * Messages, in order (integers big-endian; SEQPACKET keeps each message's boundary):
 *
 * 1. header, 24 bytes, no fds: magic `APRN`, format version u16 (1), flags u16 (0),
 *    generation u64, connection fd count u32, state length u32.
 * 2. state, 8 bytes + 1 fd: tag `APRM`, state length u32; the fd is a memfd sealed with
 *    F_SEAL_WRITE|GROW|SHRINK|SEAL holding exactly the state bytes.
 * 3. batches, 12 bytes + up to 253 fds (SCM_MAX_FD) each: tag `APRF`, batch index u32, fd
 *    count u32; the connection fds in the order given, which is the order of the state's records.
 *
 * Who closes what: `writeBundle` closes its writing end and the memfd, never the caller's fds
 * (the kernel holds its own references; closing the caller's copies sends no FIN while the
 * bundle lives), and returns the reading end, which the caller owns. `readBundle` never closes
 * the bundle fd; the fds it returns are the caller's; when it throws, every fd it received is
 * already closed.
 *
 * Limits measured on Linux 6.18 (docs/design.md, "systemd facts"): a socketpair's queue is bounded by the
 * writer's SO_SNDBUF (net.core.wmem_default 212992 → 278 small messages, 70 334 fds; the fds
 * themselves are not charged; net.unix.max_dgram_qlen does not apply to a connected pair).
 * Unprivileged senders also get ETOOMANYREFS once their user's fds in flight exceed
 * RLIMIT_NOFILE (soft), so `writeBundle` grows the buffer or raises the soft limit on demand
 * (Deno already raises soft to hard at start-up: in practice the hard limit, LimitNOFILE=).
 */
import {
  AF_UNIX,
  closeFd,
  createSealedMemfd,
  dupFd,
  E,
  FULL_SEALS,
  getIntOption,
  getSeals,
  MSG_DONTWAIT,
  MSG_PEEK,
  openFds,
  pollFds,
  POLLIN,
  raiseFdLimit,
  readMemfd,
  type ReceivedMessage,
  receiveMessage,
  SCM_MAX_FD,
  sendMessage,
  setIntOption,
  SO_SNDBUF,
  SOCK_SEQPACKET,
  socketInfo,
  socketPair,
  SOL_SOCKET,
  SysError,
} from "../sys/mod.ts";
import { HandoffBundleError, type HandoffBundleReason } from "./errors.ts";

/** The bundle format version this binary writes and reads. */
export const BUNDLE_VERSION = 1;
/** Most connection fds one bundle may announce (the kernel's default fs.nr_open). */
export const MAX_BUNDLE_FDS = 1 << 20;

const HEADER_MAGIC = 0x4150524e; // "APRN"
const STATE_TAG = 0x4150524d; // "APRM"
const BATCH_TAG = 0x41505246; // "APRF"
const HEADER_SIZE = 24;
const STATE_MESSAGE_SIZE = 8;
const BATCH_MESSAGE_SIZE = 12;
/** socket(7): like SO_SNDBUF, but past net.core.wmem_max; needs CAP_NET_ADMIN. */
const SO_SNDBUFFORCE = 32;
const MAX_SEND_BUFFER = 64 << 20;
const DEFAULT_TIMEOUT_MS = 2000;
/**
 * The default largest state a bundle may carry: the reader's refusal (it would map and decode
 * all of it) and the writer's budget (worker/state_budget.ts) are the same number.
 */
export const MAX_STATE_BYTES = 256 << 20;

/** Options for {@linkcode writeBundle}. */
export interface WriteBundleOptions {
  /** The handoff generation, repeated in the header so a reader can refuse a stale bundle. */
  generation: number;
  /** The encoded state (`encodeState`), copied into a sealed memfd. */
  state: Uint8Array;
  /** Connection fds in record order. Not closed: still the caller's afterwards. */
  fds: readonly number[];
  /** Initial SO_SNDBUF of the writing end in bytes (default: the kernel's); grows on demand. */
  sendBufferBytes?: number;
}

/**
 * Writes a whole bundle into a new SEQPACKET socketpair and closes the writing end. Returns
 * the reading end, which the caller owns (store it with `FDPOLL=0`). Never blocks: a full send
 * buffer is grown, ETOOMANYREFS raises the soft fd limit once. Throws
 * {@linkcode HandoffBundleError} (code ERR_HANDOFF_STORE) with nothing left open.
 */
export function writeBundle(options: WriteBundleOptions): number {
  checkWriteOptions(options);
  const { generation, state, fds } = options;
  let readEnd = -1, writeEnd = -1, memfd = -1;
  try {
    [readEnd, writeEnd] = socketPair(SOCK_SEQPACKET);
    if (options.sendBufferBytes) {
      setIntOption(writeEnd, SOL_SOCKET, SO_SNDBUF, options.sendBufferBytes);
    }
    const sender = makeSender(writeEnd);
    sender.send("header", encodeHeader(generation, fds.length, state.byteLength), []);
    memfd = createSealedMemfd(`apprun-state-${generation}`, state);
    sender.send("state", encodeWords(STATE_TAG, state.byteLength), [memfd]);
    closeFd(memfd);
    memfd = -1;
    for (let index = 0, start = 0; start < fds.length; index++, start += SCM_MAX_FD) {
      const batch = fds.slice(start, start + SCM_MAX_FD);
      sender.send(`fd batch ${index}`, encodeWords(BATCH_TAG, index, batch.length), batch);
    }
    const bundle = readEnd;
    readEnd = -1;
    return bundle;
  } catch (err) {
    if (err instanceof HandoffBundleError) throw err;
    throw new HandoffBundleError("write", `writing the handoff bundle failed: ${messageOf(err)}`, {
      cause: err,
      isWriting: true,
    });
  } finally {
    for (const fd of [memfd, writeEnd, readEnd]) if (fd >= 0) closeFd(fd);
  }
}

function checkWriteOptions({ generation, state, fds, sendBufferBytes }: WriteBundleOptions): void {
  const refuse = (problem: string): never => {
    throw new HandoffBundleError("argument", `cannot write a handoff bundle: ${problem}`, {
      isWriting: true,
    });
  };
  if (!Number.isSafeInteger(generation) || generation < 0) refuse(`generation ${generation}`);
  if (!(state instanceof Uint8Array) || state.byteLength > 0xffffffff) refuse("state bytes");
  if (!Array.isArray(fds) || fds.length > MAX_BUNDLE_FDS) refuse(`more than ${MAX_BUNDLE_FDS} fds`);
  const bad = fds.find((fd) => !Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff);
  if (bad !== undefined) refuse(`${bad} is not an fd`);
  const isBufferOk = sendBufferBytes === undefined || Number.isInteger(sendBufferBytes);
  if (!isBufferOk || sendBufferBytes! < 0) refuse(`sendBufferBytes ${sendBufferBytes}`);
}

/** Sends whole messages without blocking, making room when the kernel has none. */
function makeSender(fd: number) {
  let hasRaisedFdLimit = false;
  let fdsSent = 0;
  function send(what: string, data: Uint8Array, fds: readonly number[]): void {
    for (;;) {
      let result: number | "again";
      try {
        result = sendMessage({ fd, data, fds, flags: MSG_DONTWAIT });
      } catch (err) {
        const code = err instanceof SysError ? err.errno : 0;
        if (code === E.EINTR) continue;
        if (code === E.ETOOMANYREFS && !hasRaisedFdLimit) {
          // Fds in flight count against the sender's soft RLIMIT_NOFILE (unless privileged).
          hasRaisedFdLimit = true;
          raiseFdLimit();
          continue;
        }
        const isLimit = code === E.ETOOMANYREFS;
        const detail = isLimit
          ? `${fdsSent + fds.length} fds in flight exceed RLIMIT_NOFILE (${raiseFdLimit()}): ` +
            "raise LimitNOFILE="
          : messageOf(err);
        throw new HandoffBundleError(isLimit ? "fd-limit" : "write", `bundle ${what}: ${detail}`, {
          cause: err,
          isWriting: true,
        });
      }
      if (result === "again") {
        if (growSendBuffer(fd)) continue;
        throw new HandoffBundleError(
          "buffer",
          `handoff bundle ${what}: send buffer full at ${
            getIntOption(fd, SOL_SOCKET, SO_SNDBUF)
          } bytes and it cannot grow (net.core.wmem_max)`,
          { isWriting: true },
        );
      }
      fdsSent += fds.length;
      return;
    }
  }
  return { send };
}

/** Doubles SO_SNDBUF (forcing past wmem_max when privileged). Whether it grew. */
function growSendBuffer(fd: number): boolean {
  const before = getIntOption(fd, SOL_SOCKET, SO_SNDBUF);
  if (before >= MAX_SEND_BUFFER) return false;
  const target = Math.min(before * 2, MAX_SEND_BUFFER);
  try {
    setIntOption(fd, SOL_SOCKET, SO_SNDBUFFORCE, target);
  } catch {
    setIntOption(fd, SOL_SOCKET, SO_SNDBUF, target);
  }
  return getIntOption(fd, SOL_SOCKET, SO_SNDBUF) > before;
}

/** The header as six big-endian words: magic, version << 16 | flags, generation (u64), counts. */
function encodeHeader(generation: number, fdCount: number, stateLength: number): Uint8Array {
  const high = Math.floor(generation / 2 ** 32), low = generation >>> 0;
  return encodeWords(HEADER_MAGIC, BUNDLE_VERSION << 16, high, low, fdCount, stateLength);
}

function encodeWords(...words: number[]): Uint8Array {
  const bytes = new Uint8Array(4 * words.length);
  const view = new DataView(bytes.buffer);
  words.forEach((word, i) => view.setUint32(4 * i, word));
  return bytes;
}

/** What a bundle's header announces. */
export interface BundleHeader {
  version: number;
  generation: number;
  fdCount: number;
  stateLength: number;
}

/** Options for {@linkcode readBundle}. */
export interface ReadBundleOptions {
  /** Refuse (reason "generation", bundle left intact) a bundle of another generation. */
  expectedGeneration?: number;
  /** Bound on the whole read while the writing end is open but silent (default 2000 ms). */
  timeoutMs?: number;
  /**
   * Largest state read (default {@linkcode MAX_STATE_BYTES}). A larger one is not read: it is
   * reported in `stateError` (reason "length") and the connection fds are still returned.
   */
  maxStateBytes?: number;
}

/** A bundle read back. `fds` are the caller's, in record order. */
export interface BundleContents {
  header: BundleHeader;
  /** The state bytes (still to be decoded), or null when `stateError` says why not. */
  state: Uint8Array | null;
  /**
   * Why the state could not be read (an unsealed or wrongly sized memfd). The connection fds are
   * still good: the caller falls back to the safest resume (idle HTTP serves, WebSockets 1012).
   */
  stateError: HandoffBundleError | null;
  fds: number[];
}

/**
 * Reads a whole bundle from `fd` (not closed). The header is peeked first: a bundle of an
 * unknown magic, version or generation, or with more fds than this process has room for, is
 * refused with nothing consumed (`isBundleIntact`), so a newer binary could still read it. A
 * bad state memfd, or a state over `maxStateBytes`, is reported in `stateError` with the fds
 * still returned: the connections are served as plain HTTP rather than lost. Anything else (a truncated bundle, out-of-order messages, fds the kernel
 * dropped, a silent writer past `timeoutMs`) throws {@linkcode HandoffBundleError} after
 * closing every fd received. Throws nothing else.
 */
export async function readBundle(
  fd: number,
  options: ReadBundleOptions = {},
): Promise<BundleContents> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const reader = makeReader(fd, performance.now() + timeoutMs, timeoutMs);
  checkBundleSocket(fd);
  const header = await peekHeader(reader, options);
  growFdTable(header.fdCount);
  try {
    const consumed = await reader.receive("header", HEADER_SIZE + 1);
    if (consumed.data.byteLength !== HEADER_SIZE || consumed.fds.length) {
      throw sequenceError("the header changed between peek and read");
    }
    const maxStateBytes = options.maxStateBytes ?? MAX_STATE_BYTES;
    const { state, stateError } = await receiveState(reader, header, maxStateBytes);
    await receiveBatches(reader, header);
    checkEnd(fd, reader);
    return { header, state, stateError, fds: reader.held };
  } catch (err) {
    for (const held of reader.held) closeFd(held);
    if (err instanceof HandoffBundleError) throw err;
    throw new HandoffBundleError("read", `reading the handoff bundle failed: ${messageOf(err)}`, {
      cause: err,
    });
  }
}

/**
 * Receives whole messages until a deadline; remembers every fd received in `held`. Between
 * tries it waits in poll(2) for the socket (not with Deno's timers, which cost a first use
 * 10–40 ms and every wake a few ms, inside a handoff's pause).
 */
function makeReader(fd: number, deadline: number, timeoutMs: number) {
  const held: number[] = [];
  async function receive(what: string, maxBytes: number, flags = 0): Promise<ReceivedMessage> {
    for (;;) {
      let message: ReceivedMessage | "again";
      try {
        message = receiveMessage({ fd, maxBytes, maxFds: SCM_MAX_FD, flags: flags | MSG_DONTWAIT });
      } catch (err) {
        if (err instanceof SysError && err.errno === E.EINTR) continue;
        throw new HandoffBundleError("read", `reading the bundle ${what}: ${messageOf(err)}`, {
          cause: err,
          isBundleIntact: (flags & MSG_PEEK) !== 0,
        });
      }
      if (message !== "again") {
        if ((flags & MSG_PEEK) === 0) held.push(...message.fds);
        return message;
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new HandoffBundleError(
          "timeout",
          `no bundle ${what} within ${timeoutMs} ms: its writing end is still open but silent`,
          { isBundleIntact: (flags & MSG_PEEK) !== 0 },
        );
      }
      await pollFds([{ fd, events: POLLIN }], Math.min(left, 1000));
    }
  }
  return { held, receive };
}

type Reader = ReturnType<typeof makeReader>;

/**
 * Grows this process's fd table once to fit `count` more fds. Receiving thousands of fds grows
 * it by doubling, and in a multi-threaded process each growth waits for an RCU grace period
 * (expand_fdtable → synchronize_rcu, ~10 ms here): 1000 TCP fds took 16–27 ms to receive
 * instead of 0.3. One dup to a high number pays that wait once — before a warm takeover, while
 * the app loads (off the pause), and again (at no cost) when the bundle is read.
 */
export function growFdTable(count: number): void {
  if (count < 64) return;
  try {
    const high = dupFd(0, Math.min(count + 1024, raiseFdLimit() - 1));
    closeFd(high);
  } catch {
    // Out of room or no fd 0: the receive will grow the table as it goes.
  }
}

function checkBundleSocket(fd: number): void {
  let info;
  try {
    info = socketInfo(fd);
  } catch (err) {
    throw new HandoffBundleError("socket", `bundle fd ${fd}: ${messageOf(err)}`, { cause: err });
  }
  if (!info || info.domain !== AF_UNIX || info.type !== SOCK_SEQPACKET) {
    throw new HandoffBundleError("socket", `bundle fd ${fd} is not a unix SOCK_SEQPACKET socket`, {
      isBundleIntact: true,
    });
  }
}

async function peekHeader(reader: Reader, options: ReadBundleOptions): Promise<BundleHeader> {
  const message = await reader.receive("header", HEADER_SIZE + 1, MSG_PEEK);
  // A peek installs copies of any fds the message carries: ours to close.
  for (const copy of message.fds) closeFd(copy);
  const refuse = (reason: HandoffBundleReason, problem: string): never => {
    throw new HandoffBundleError(reason, `handoff bundle refused: ${problem}`, {
      isBundleIntact: true,
    });
  };
  const { data } = message;
  if (data.byteLength === 0 && message.fds.length === 0) refuse("truncated", "it is empty");
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data.byteLength < 6 || view.getUint32(0) !== HEADER_MAGIC) {
    refuse("magic", `its first message does not start with "APRN"`);
  }
  const version = view.getUint16(4);
  if (version !== BUNDLE_VERSION) {
    refuse("version", `format version ${version}, this apprun reads version ${BUNDLE_VERSION}`);
  }
  if (data.byteLength !== HEADER_SIZE || message.fds.length) {
    refuse("sequence", `header of ${data.byteLength} bytes and ${message.fds.length} fds`);
  }
  const flags = view.getUint16(6);
  if (flags !== 0) refuse("version", `flags 0x${flags.toString(16)} unknown to version 1`);
  const generation = view.getBigUint64(8);
  if (generation > BigInt(Number.MAX_SAFE_INTEGER)) {
    refuse("generation", `generation ${generation}`);
  }
  const header: BundleHeader = {
    version,
    generation: Number(generation),
    fdCount: view.getUint32(16),
    stateLength: view.getUint32(20),
  };
  const expected = options.expectedGeneration;
  if (expected !== undefined && header.generation !== expected) {
    refuse("generation", `generation ${header.generation}, expected ${expected}`);
  }
  if (header.fdCount > MAX_BUNDLE_FDS) refuse("sequence", `${header.fdCount} fds announced`);
  // Check room before the kernel drops what does not fit (MSG_CTRUNC loses those connections).
  const room = raiseFdLimit() - openFds().length;
  if (header.fdCount + 1 > room) {
    refuse("fd-limit", `${header.fdCount} fds announced, room for ${room}: raise LimitNOFILE=`);
  }
  return header;
}

async function receiveState(
  reader: Reader,
  header: BundleHeader,
  maxStateBytes: number,
): Promise<Pick<BundleContents, "state" | "stateError">> {
  const message = await reader.receive("state", STATE_MESSAGE_SIZE + 1);
  checkMessage(message, "the state message");
  const view = new DataView(message.data.buffer);
  if (
    message.data.byteLength !== STATE_MESSAGE_SIZE || view.getUint32(0) !== STATE_TAG ||
    message.fds.length !== 1 || view.getUint32(4) !== header.stateLength
  ) {
    throw sequenceError(
      `expected the state message, got ${message.data.byteLength} bytes with ${message.fds.length} fds`,
    );
  }
  const memfd = reader.held.pop()!;
  const fail = (reason: HandoffBundleReason, problem: string, cause?: unknown) => ({
    state: null,
    stateError: new HandoffBundleError(reason, `handoff state memfd ${problem}`, { cause }),
  });
  try {
    if (header.stateLength > maxStateBytes) {
      return fail(
        "length",
        `of ${header.stateLength} bytes is more than ${maxStateBytes}: not read`,
      );
    }
    const seals = getSeals(memfd);
    if ((seals & FULL_SEALS) !== FULL_SEALS) {
      const want = FULL_SEALS.toString(16);
      return fail("seal", `has seals 0x${seals.toString(16)}, not 0x${want}: it could change`);
    }
    const state = readMemfd(memfd, header.stateLength);
    if (state.byteLength !== header.stateLength) {
      return fail(
        "length",
        `holds ${state.byteLength} bytes, the header says ${header.stateLength}`,
      );
    }
    return { state, stateError: null };
  } catch (err) {
    return fail("length", messageOf(err), err);
  } finally {
    closeFd(memfd);
  }
}

async function receiveBatches(reader: Reader, header: BundleHeader): Promise<void> {
  for (let index = 0; reader.held.length < header.fdCount; index++) {
    const expected = Math.min(SCM_MAX_FD, header.fdCount - reader.held.length);
    const before = reader.held.length;
    const message = await reader.receive(`fd batch ${index}`, BATCH_MESSAGE_SIZE + 1);
    checkMessage(message, `fd ${before} of ${header.fdCount}`);
    const view = new DataView(message.data.buffer);
    const isBatch = message.data.byteLength === BATCH_MESSAGE_SIZE &&
      view.getUint32(0) === BATCH_TAG;
    if (!isBatch || view.getUint32(4) !== index || view.getUint32(8) !== expected) {
      throw sequenceError(`expected fd batch ${index} of ${expected} fds`);
    }
    if (message.fds.length !== expected) {
      throw sequenceError(`fd batch ${index} says ${expected} fds, carries ${message.fds.length}`);
    }
  }
}

/** Nothing may follow the last batch; an open but idle writing end is tolerated. */
function checkEnd(fd: number, reader: Reader): void {
  const message = receiveMessage({ fd, maxBytes: 64, flags: MSG_DONTWAIT });
  if (message === "again" || (message.data.byteLength === 0 && message.fds.length === 0)) return;
  for (const extra of message.fds) closeFd(extra);
  throw sequenceError(`a message after the last fd batch (${reader.held.length} fds)`);
}

/** EOF and dropped fds, the failures every message shares. */
function checkMessage(message: ReceivedMessage, what: string): void {
  if (message.data.byteLength === 0 && message.fds.length === 0) {
    throw new HandoffBundleError("truncated", `handoff bundle ended before ${what}: cut short`);
  }
  if (message.isControlTruncated) {
    const hint = "out of fds: raise RLIMIT_NOFILE before reading";
    throw new HandoffBundleError("fd-limit", `the kernel dropped fds before ${what} (${hint})`);
  }
}

function sequenceError(problem: string): HandoffBundleError {
  return new HandoffBundleError("sequence", `handoff bundle out of order: ${problem}`);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
