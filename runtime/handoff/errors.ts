/**
 * @module
 * The handoff's two error classes: `HandoffStateError` for a state blob that cannot be trusted
 * (codec.ts, state.ts) and `HandoffBundleError` for a bundle that cannot be written or read
 * (bundle.ts). Each carries a `reason` from a small union so the caller can log one clear line
 * and pick its fallback; neither decides what the fallback is.
 */
import { AppRunError } from "../errors.ts";

/** Why a state blob was refused. */
export type HandoffStateReason =
  /** The blob does not start with `APRS`. */
  | "magic"
  /** A format version this binary does not know (a newer apprun wrote it). */
  | "version"
  /** Flag bits this format version does not define. */
  | "flags"
  /** Too short for its header, or the payload length does not match. */
  | "length"
  /** The payload's CRC-32C does not match the header. */
  | "checksum"
  /** The payload is not one well-formed CBOR data item. */
  | "cbor"
  /** The CBOR is well formed but is not a `HandoffState` (a field's type, range or name). */
  | "shape"
  /** The state belongs to another generation than the one expected. */
  | "generation";

/** A state blob that cannot be trusted, or a state that cannot be encoded. */
export class HandoffStateError extends AppRunError {
  override name = "HandoffStateError";
  readonly reason: HandoffStateReason;
  constructor(reason: HandoffStateReason, message: string, options?: ErrorOptions) {
    super("ERR_HANDOFF_STATE", message, options);
    this.reason = reason;
  }
}

/** Why a bundle could not be written or read. */
export type HandoffBundleReason =
  // Writing (code ERR_HANDOFF_STORE): nothing was stored; the caller still owns its fds.
  /** writeBundle was given a generation, state or fd list it cannot carry. */
  | "argument"
  /** The socket's send buffer stayed full even after growing it. */
  | "buffer"
  /** Too many fds: in flight (ETOOMANYREFS) when writing; more than the reader has room for. */
  | "fd-limit"
  /** Any other failed system call while writing. */
  | "write"
  // Reading (code ERR_HANDOFF_STATE).
  /** The fd is not an AF_UNIX SOCK_SEQPACKET socket. */
  | "socket"
  /** The header does not start with `APRN`, or is not a header. */
  | "magic"
  /** A bundle format version this binary does not know. */
  | "version"
  /** The bundle belongs to another generation than the one expected. */
  | "generation"
  /** A message's size, tag, index or fd count is not the one its place requires. */
  | "sequence"
  /** The bundle ended (writer closed) before every announced message arrived. */
  | "truncated"
  /** No next message within the time bound: the writing end is open but silent. */
  | "timeout"
  /** The state fd is not sealed with F_SEAL_WRITE|GROW|SHRINK|SEAL. */
  | "seal"
  /** The state memfd's size does not match the header. */
  | "length"
  /** Any other failed system call while reading. */
  | "read";

/** Options for {@linkcode HandoffBundleError}. */
export interface HandoffBundleErrorOptions extends ErrorOptions {
  /** Raised while writing (code ERR_HANDOFF_STORE) rather than reading (ERR_HANDOFF_STATE). */
  isWriting?: boolean;
  /** Nothing was consumed from the bundle socket: another reader could still read it whole. */
  isBundleIntact?: boolean;
}

/** A bundle that could not be written, or read back whole. */
export class HandoffBundleError extends AppRunError {
  override name = "HandoffBundleError";
  readonly reason: HandoffBundleReason;
  /** True when the error was found by peeking: the bundle socket still holds every message. */
  readonly isBundleIntact: boolean;
  constructor(
    reason: HandoffBundleReason,
    message: string,
    options: HandoffBundleErrorOptions = {},
  ) {
    const { isWriting = false, isBundleIntact = false, ...errorOptions } = options;
    super(isWriting ? "ERR_HANDOFF_STORE" : "ERR_HANDOFF_STATE", message, errorOptions);
    this.reason = reason;
    this.isBundleIntact = isBundleIntact;
  }
}
