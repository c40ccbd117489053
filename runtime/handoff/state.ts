/**
 * @module
 * The handoff state: the explicit, versioned type one apprun process leaves for the next
 * (docs/design.md, "The handoff protocol"), and the field-by-field check that turns an untrusted decoded value into one.
 * Owns no bytes and no fds: codec.ts frames and checksums it, bundle.ts carries it.
 *
 * Records list connections in the order their fds are sent in the bundle: record `i` describes
 * fd `i`. `proto` and `app` are opaque here but must be plain data (see {@linkcode PlainData}),
 * so what encodes always decodes to an equal value. On the wire a record is a CBOR array (see
 * {@linkcode toWireRecord}): at 10k connections the map keys alone were half the state. Idle
 * HTTP connections travel in bulk instead (`idle`, idle_table.ts), after the records: a state
 * with that field is refused by apprun before it (unknown field), which then serves every fd
 * as plain HTTP — right for those, the safe fallback for the rest.
 */
import { HandoffStateError } from "./errors.ts";
import { checkIdleTable, type IdleTable } from "./idle_table.ts";

/** The state format version this binary writes, and the only one it reads. */
export const HANDOFF_STATE_VERSION = 1;

/** The protocol a carried connection speaks; each kind owns the meaning of its `proto`. */
export type ConnectionKind = "http" | "ws" | "sse";

/** Every kind, for checks and messages. */
export const CONNECTION_KINDS: readonly ConnectionKind[] = ["http", "ws", "sse"];

/**
 * Plain data: what `proto` and `app` may hold. null, undefined, booleans, numbers, bigints,
 * strings, Uint8Array, arrays and plain objects (string keys), nested at most
 * {@linkcode MAX_PLAIN_DEPTH} deep, without cycles. Maps, Sets, Dates, class instances and other
 * typed arrays are refused: they would not come back as the same thing.
 */
export type PlainData =
  | null
  | undefined
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PlainData[]
  | { [key: string]: PlainData };

/** How deep `proto` and `app` values may nest. */
export const MAX_PLAIN_DEPTH = 64;

/** One connection carried to the next process. */
export interface ConnectionRecord {
  kind: ConnectionKind;
  /** Bytes read from the socket but not yet consumed by the parser. */
  buffered: Uint8Array;
  /** The raw sockaddr getsockname(2) gave at snapshot time; the reader compares byte for byte. */
  local: Uint8Array | null;
  /** The raw sockaddr getpeername(2) gave at snapshot time. */
  peer: Uint8Array | null;
  /** Protocol state owned by `kind` (WebSocket parser snapshot, SSE last event id). */
  proto: unknown;
  /** What the app's `onHandoff` hook returned for this session. */
  app: unknown;
  /** Name of the listener it was accepted on, when known. */
  listener: string | null;
}

/** A record as it travels: `[kind, buffered, local, peer, proto, app, listener]`. */
export type WireRecord = [
  ConnectionKind,
  Uint8Array,
  Uint8Array | null,
  Uint8Array | null,
  unknown,
  unknown,
  string | null,
];

/** The wire form of a record (no copy, no check: `checkConnectionRecord` checks it). */
export function toWireRecord(r: ConnectionRecord): WireRecord {
  return [r.kind, r.buffered, r.local, r.peer, r.proto, r.app, r.listener];
}

/**
 * The next process's cross-check of a carried fd: its address `now` (getsockname/getpeername)
 * against the one `recorded`. The same bytes, or unknown on either side (nothing to compare).
 */
export function isSameAddress(now: Uint8Array | null, recorded: Uint8Array | null): boolean {
  if (now === null || recorded === null) return true;
  if (now.byteLength !== recorded.byteLength) return false;
  for (let i = 0; i < now.byteLength; i++) if (now[i] !== recorded[i]) return false;
  return true;
}

/** Everything one process hands to the next, format version 1. */
export interface HandoffState {
  /** The apprun version that wrote it (for logs; the format version decides compatibility). */
  apprunVersion: string;
  /** The handoff generation: 0 for the first process, +1 per handoff. */
  generation: number;
  /** When the snapshot was taken, ms since the epoch. */
  createdAt: number;
  /** The writer's pid. */
  pid: number;
  /** One record per carried fd, in fd order. */
  connections: ConnectionRecord[];
  /** Process-level app state. */
  app: unknown;
  /** Idle HTTP connections in bulk, whose fds follow the records' (absent: none). */
  idle?: IdleTable;
}

const STATE_FIELDS = ["apprunVersion", "generation", "createdAt", "pid", "connections", "app"];
const RECORD_FIELDS = ["kind", "buffered", "local", "peer", "proto", "app", "listener"];
/** A sockaddr is at most sizeof(struct sockaddr_storage). */
const MAX_SOCKADDR = 128;
const MAX_VERSION_LENGTH = 128;
const MAX_LISTENER_LENGTH = 255;
const MAX_PID = 0x7fffffff;

/**
 * Where a value sits, built lazily: a path string per checked value would cost more than the
 * check itself (10k records), so it is only spelled out for an error.
 */
type Path = string | { parent: Path; key: string | number };

function at(parent: Path, key: string | number): Path {
  return { parent, key };
}

function formatPath(path: Path): string {
  if (typeof path === "string") return path;
  const key = typeof path.key === "number" ? `[${path.key}]` : `.${path.key}`;
  return formatPath(path.parent) + key;
}

function shapeError(path: Path, problem: string): HandoffStateError {
  return new HandoffStateError("shape", `handoff state ${formatPath(path)}: ${problem}`);
}

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  if (Array.isArray(value)) return "array";
  return value.constructor?.name ?? "object";
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Checks that `value` has exactly `fields` as keys (missing or extra names are errors). */
function checkFields(
  value: unknown,
  fields: readonly string[],
  path: Path,
  optional: readonly string[] = [],
): Record<string, unknown> {
  if (!isPlainObject(value)) {
    throw shapeError(path, `expected an object, got ${describeType(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!fields.includes(key) && !optional.includes(key)) {
      throw shapeError(path, `unknown field ${JSON.stringify(key)}`);
    }
  }
  for (const field of fields) {
    if (!Object.hasOwn(value, field)) throw shapeError(path, `missing field "${field}"`);
  }
  return value;
}

function checkInteger(value: unknown, path: Path, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    const shown = typeof value === "number" ? String(value) : describeType(value);
    throw shapeError(path, `expected an integer in ${min}..${max}, got ${shown}`);
  }
  return value;
}

function checkString(value: unknown, path: Path, maxLength: number, minLength = 0): string {
  if (typeof value !== "string") {
    throw shapeError(path, `expected a string, got ${describeType(value)}`);
  }
  if (value.length < minLength || value.length > maxLength) {
    throw shapeError(path, `expected ${minLength}..${maxLength} characters, got ${value.length}`);
  }
  return value;
}

/** A copy as a plain Uint8Array: decoders may hand out Buffers or views into their input. */
function copyBytes(value: Uint8Array): Uint8Array {
  return new Uint8Array(value);
}

/**
 * Checks that `value` is {@linkcode PlainData} and returns a fresh copy of it (byte strings
 * copied to plain Uint8Arrays). Throws {@linkcode HandoffStateError} ("shape") naming the path.
 */
export function checkPlainData(value: unknown, path: string): PlainData {
  return copyPlain(value, path, []);
}

/** `ancestors` holds the objects above `value` (at most MAX_PLAIN_DEPTH): a repeat is a cycle. */
function copyPlain(value: unknown, path: Path, ancestors: object[]): PlainData {
  switch (typeof value) {
    case "undefined":
    case "boolean":
    case "number":
    case "bigint":
    case "string":
      return value;
    case "object":
      break;
    default:
      throw shapeError(path, `${typeof value} is not plain data`);
  }
  if (value === null) return null;
  if (value instanceof Uint8Array) return copyBytes(value);
  if (ancestors.includes(value)) throw shapeError(path, "cycle");
  if (ancestors.length >= MAX_PLAIN_DEPTH) {
    throw shapeError(path, `nested deeper than ${MAX_PLAIN_DEPTH}`);
  }
  ancestors.push(value);
  try {
    if (Array.isArray(value)) {
      if (Object.getPrototypeOf(value) !== Array.prototype) {
        throw shapeError(path, `${describeType(value)} is not plain data`);
      }
      return Array.from(value, (item, i) => copyPlain(item, at(path, i), ancestors));
    }
    if (!isPlainObject(value)) throw shapeError(path, `${describeType(value)} is not plain data`);
    if (Object.getOwnPropertySymbols(value).length > 0) throw shapeError(path, "symbol keys");
    const out: Record<string, PlainData> = {};
    for (const key of Object.keys(value)) {
      // CBOR decoders rename "__proto__" (prototype pollution): it could not round-trip.
      if (key === "__proto__") throw shapeError(path, `key "__proto__" is not allowed`);
      out[key] = copyPlain(value[key], at(path, key), ancestors);
    }
    return out;
  } finally {
    ancestors.pop();
  }
}

/** Checks a recorded raw sockaddr (bytes or null); `key` names it under `path` on error only. */
function checkAddrAt(value: unknown, path: Path, key: string): Uint8Array | null {
  if (value === null) return null;
  if (!(value instanceof Uint8Array) || value.byteLength < 2 || value.byteLength > MAX_SOCKADDR) {
    throw shapeError(
      at(path, key),
      `expected a sockaddr (2–${MAX_SOCKADDR} bytes) or null, got ${describeType(value)}`,
    );
  }
  return copyBytes(value);
}

/**
 * Checks one record in its wire form (an array); returns a fresh {@linkcode ConnectionRecord}.
 * Throws HandoffStateError ("shape").
 */
export function checkConnectionRecord(value: unknown, path = "connection"): ConnectionRecord {
  return checkRecordAt(value, path);
}

function checkRecordAt(value: unknown, path: Path): ConnectionRecord {
  if (!Array.isArray(value) || value.length !== RECORD_FIELDS.length) {
    throw shapeError(
      path,
      `expected a record of ${RECORD_FIELDS.length} fields, got ${describeType(value)}${
        Array.isArray(value) ? ` of ${value.length}` : ""
      }`,
    );
  }
  const [kind, buffered, local, peer, proto, app, listener] = value;
  if (!CONNECTION_KINDS.includes(kind as ConnectionKind)) {
    const shown = typeof kind === "string" ? JSON.stringify(kind) : describeType(kind);
    throw shapeError(at(path, "kind"), `unknown connection kind ${shown}`);
  }
  if (!(buffered instanceof Uint8Array)) {
    throw shapeError(at(path, "buffered"), `expected bytes, got ${describeType(buffered)}`);
  }
  return {
    kind: kind as ConnectionKind,
    buffered: copyBytes(buffered),
    local: checkAddrAt(local, path, "local"),
    peer: checkAddrAt(peer, path, "peer"),
    proto: proto === null ? null : copyPlain(proto, at(path, "proto"), []),
    app: app === null ? null : copyPlain(app, at(path, "app"), []),
    // The common case first: a short string needs no path object (10k records per handoff).
    listener: listener === null
      ? null
      : typeof listener === "string" && listener.length <= MAX_LISTENER_LENGTH
      ? listener
      : checkString(listener, at(path, "listener"), MAX_LISTENER_LENGTH),
  };
}

/**
 * Checks a whole state in its wire form (records as arrays), field by field (types, ranges, no
 * unknown fields), and returns a fresh copy with records as objects. Throws
 * {@linkcode HandoffStateError} ("shape") naming the first bad field.
 */
export function checkHandoffState(value: unknown): HandoffState {
  const state = checkFields(value, STATE_FIELDS, "state", ["idle"]);
  const apprunVersion = checkString(
    state.apprunVersion,
    "state.apprunVersion",
    MAX_VERSION_LENGTH,
    1,
  );
  const generation = checkInteger(state.generation, "state.generation", 0, Number.MAX_SAFE_INTEGER);
  const createdAt = checkInteger(state.createdAt, "state.createdAt", 0, Number.MAX_SAFE_INTEGER);
  const pid = checkInteger(state.pid, "state.pid", 1, MAX_PID);
  const list = state.connections;
  if (!Array.isArray(list)) {
    throw shapeError("state.connections", `expected an array, got ${describeType(list)}`);
  }
  const connections = Array.from(
    list,
    (record, i) => checkRecordAt(record, at("state.connections", i)),
  );
  const app = checkPlainData(state.app, "state.app");
  const checked: HandoffState = { apprunVersion, generation, createdAt, pid, connections, app };
  if (state.idle !== undefined) checked.idle = checkIdleTable(state.idle);
  return checked;
}
