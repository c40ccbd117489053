/**
 * @module
 * Idle HTTP connections in bulk (docs/design.md, "The handoff protocol"): at a handoff most
 * carried connections are keep-alive ones between requests, with nothing read and nothing owed;
 * all the next process needs of one is its listener and its peer's address (the cross-check).
 * They travel as one table of flat byte arrays in the state (`HandoffState.idle`) instead of a
 * record — a JavaScript object — each: the old process writes it as it takes connections out,
 * the new one reads an entry only when that connection is first readable. Their fds follow the
 * records' fds in the bundle, in table order.
 *
 * Owns no fd: the builder keeps the numbers it is given for the caller.
 */
import { HandoffStateError } from "./errors.ts";

/** The table, as it travels (CBOR byte strings and one array of names). */
export interface IdleTable {
  /** Listener names; connection i came in on `listeners[listener[i]]`, 255 meaning unknown. */
  listeners: string[];
  /** One byte per connection: its listener's index. */
  listener: Uint8Array;
  /** One byte per connection: the length of its peer's sockaddr in `peers` (0: unknown). */
  peerLength: Uint8Array;
  /** The peers' raw sockaddrs (getpeername(2) bytes), concatenated in table order. */
  peers: Uint8Array;
}

/** Listener index meaning "unknown". */
const NO_LISTENER = 255;
const MAX_LISTENERS = 255;
const MAX_LISTENER_LENGTH = 255;
const MAX_SOCKADDR = 128;

/** The table of no connection. */
export function emptyIdleTable(): IdleTable {
  return {
    listeners: [],
    listener: new Uint8Array(0),
    peerLength: new Uint8Array(0),
    peers: new Uint8Array(0),
  };
}

/** Builds a table (and the list of fds in its order) one connection at a time. */
export class IdleTableBuilder {
  readonly fds: number[] = [];
  readonly #names = new Map<string, number>();
  #listener: Uint8Array<ArrayBuffer> = new Uint8Array(256);
  #peerLength: Uint8Array<ArrayBuffer> = new Uint8Array(256);
  #peers: Uint8Array<ArrayBuffer> = new Uint8Array(256 * 28);
  #peersUsed = 0;

  get count(): number {
    return this.fds.length;
  }

  /** Adds a connection; `peer` is its raw sockaddr (copied), or null when unknown. */
  add(fd: number, listener: string | null, peer: Uint8Array | null): void {
    const i = this.fds.length;
    if (i === this.#listener.length) {
      this.#listener = grow(this.#listener, i * 2);
      this.#peerLength = grow(this.#peerLength, i * 2);
    }
    this.fds.push(fd);
    this.#listener[i] = listener === null ? NO_LISTENER : this.#indexOf(listener);
    const length = peer !== null && peer.byteLength <= MAX_SOCKADDR ? peer.byteLength : 0;
    this.#peerLength[i] = length;
    if (length === 0) return;
    if (this.#peersUsed + length > this.#peers.length) {
      this.#peers = grow(this.#peers, Math.max(this.#peers.length * 2, this.#peersUsed + length));
    }
    this.#peers.set(peer!, this.#peersUsed);
    this.#peersUsed += length;
  }

  /** Adds entry `i` of `from` (a connection carried on as is) under `fd`, copying its bytes. */
  addFrom(from: IdleTableReader, i: number, fd: number): void {
    const { table, offsets } = internals.get(from)!;
    const n = this.fds.length;
    if (n === this.#listener.length) {
      this.#listener = grow(this.#listener, n * 2);
      this.#peerLength = grow(this.#peerLength, n * 2);
    }
    this.fds.push(fd);
    const index = table.listener[i];
    this.#listener[n] = index === NO_LISTENER ? NO_LISTENER : this.#indexOf(table.listeners[index]);
    const length = table.peerLength[i];
    this.#peerLength[n] = length;
    if (this.#peersUsed + length > this.#peers.length) {
      this.#peers = grow(this.#peers, Math.max(this.#peers.length * 2, this.#peersUsed + length));
    }
    const peers = this.#peers, from_ = table.peers, at = offsets[i];
    for (let k = 0; k < length; k++) peers[this.#peersUsed + k] = from_[at + k];
    this.#peersUsed += length;
  }

  /** The table (views on the builder's buffers: build once). */
  build(): IdleTable {
    const n = this.fds.length;
    return {
      listeners: [...this.#names.keys()],
      listener: this.#listener.subarray(0, n),
      peerLength: this.#peerLength.subarray(0, n),
      peers: this.#peers.subarray(0, this.#peersUsed),
    };
  }

  #indexOf(name: string): number {
    let index = this.#names.get(name);
    if (index === undefined) {
      // Listener names are few (one per socket); past 255 of them, "unknown" is safe.
      if (this.#names.size >= MAX_LISTENERS || name.length > MAX_LISTENER_LENGTH) {
        return NO_LISTENER;
      }
      index = this.#names.size;
      this.#names.set(name, index);
    }
    return index;
  }
}

function grow(bytes: Uint8Array, size: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  out.set(bytes);
  return out;
}

/** A reader's table and each entry's offset in `peers`, for the builder's bulk copy. */
const internals = new WeakMap<IdleTableReader, { table: IdleTable; offsets: Uint32Array }>();

/** Reads entries of a checked table by index. */
export class IdleTableReader {
  readonly count: number;
  readonly #table: IdleTable;
  readonly #offsets: Uint32Array;

  constructor(table: IdleTable) {
    this.#table = table;
    this.count = table.listener.length;
    this.#offsets = new Uint32Array(this.count);
    for (let i = 0, at = 0; i < this.count; at += table.peerLength[i], i++) this.#offsets[i] = at;
    internals.set(this, { table, offsets: this.#offsets });
  }

  /** Connection i's listener name, or null when unknown. */
  listener(i: number): string | null {
    const index = this.#table.listener[i];
    return index === NO_LISTENER ? null : this.#table.listeners[index];
  }

  /** Connection i's peer sockaddr (a view: copy to keep), or null when unknown. */
  peer(i: number): Uint8Array | null {
    const length = this.#table.peerLength[i];
    if (length === 0) return null;
    return this.#table.peers.subarray(this.#offsets[i], this.#offsets[i] + length);
  }
}

function shapeError(problem: string): HandoffStateError {
  return new HandoffStateError("shape", `handoff state.idle: ${problem}`);
}

/**
 * Checks an untrusted decoded value as an {@linkcode IdleTable} and returns a fresh copy (byte
 * strings copied to plain Uint8Arrays). Throws {@linkcode HandoffStateError} ("shape").
 */
export function checkIdleTable(value: unknown): IdleTable {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw shapeError("expected an object");
  }
  const t = value as Record<string, unknown>;
  const fields = ["listeners", "listener", "peerLength", "peers"];
  const keys = Object.keys(t);
  if (keys.length !== fields.length || keys.some((k) => !fields.includes(k))) {
    throw shapeError(`fields ${keys.join(",")}, expected ${fields.join(",")}`);
  }
  const { listeners, listener, peerLength, peers } = t;
  if (
    !Array.isArray(listeners) || listeners.length > MAX_LISTENERS ||
    !listeners.every((n) => typeof n === "string" && n.length <= MAX_LISTENER_LENGTH)
  ) throw shapeError(`listeners: at most ${MAX_LISTENERS} names of ≤ ${MAX_LISTENER_LENGTH}`);
  for (const [name, v] of [["listener", listener], ["peerLength", peerLength], ["peers", peers]]) {
    if (!(v instanceof Uint8Array)) throw shapeError(`${name}: expected bytes`);
  }
  const l = listener as Uint8Array, pl = peerLength as Uint8Array, p = peers as Uint8Array;
  if (pl.byteLength !== l.byteLength) {
    throw shapeError(`${l.byteLength} listener bytes but ${pl.byteLength} peer lengths`);
  }
  let total = 0;
  for (let i = 0; i < l.byteLength; i++) {
    if (l[i] !== NO_LISTENER && l[i] >= listeners.length) {
      throw shapeError(`connection ${i}: listener ${l[i]} of ${listeners.length}`);
    }
    if (pl[i] === 1 || pl[i] > MAX_SOCKADDR) {
      throw shapeError(`connection ${i}: a peer of ${pl[i]} bytes`);
    }
    total += pl[i];
  }
  if (total !== p.byteLength) throw shapeError(`peers hold ${p.byteLength} bytes, not ${total}`);
  return {
    listeners: [...listeners as string[]],
    listener: new Uint8Array(l),
    peerLength: new Uint8Array(pl),
    peers: new Uint8Array(p),
  };
}
