/**
 * @module
 * The error base of apprun: one class with a `code` from a documented union, and `cause` kept.
 * Each area subclasses it (sys, http, listen, handler, handoff, supervisor, units, cli); an
 * error's wire answer (HTTP status, WebSocket close code) is decided where it is mapped, once.
 */

/** Every code an apprun error can carry, grouped by the area that raises it. */
export type AppRunErrorCode =
  // runtime/sys: a failed system call (the errno name is in `errno`).
  | "ERR_SYSCALL"
  // runtime/listen: inherited or requested listeners that cannot be used.
  | "ERR_LISTEN_FDS"
  | "ERR_LISTEN_BAD_FD"
  | "ERR_LISTEN_OPEN"
  | "ERR_LISTEN_LOOP"
  // runtime/handler: the user's module.
  | "ERR_HANDLER_NOT_FOUND"
  | "ERR_HANDLER_IMPORT"
  | "ERR_HANDLER_NO_DEFAULT"
  | "ERR_HANDLER_SHAPE"
  // runtime/http: a peer that breaks RFC 9112 (each maps to a 4xx in http/errors.ts).
  | "ERR_HTTP_PROTOCOL"
  // runtime/notify: sd_notify misuse (bad names, too many fds).
  | "ERR_NOTIFY"
  // runtime/handoff: state that cannot be trusted or stored.
  | "ERR_HANDOFF_STATE"
  | "ERR_HANDOFF_STORE"
  // runtime/handoff/takeover.ts: a warm takeover's messages between two processes.
  | "ERR_TAKEOVER"
  // runtime/ws: a peer that breaks RFC 6455 (each maps to a close code).
  | "ERR_WS_PROTOCOL"
  // runtime/supervisor
  | "ERR_SUPERVISOR"
  // units/ and cli/
  | "ERR_UNIT_OPTION"
  | "ERR_USAGE"
  | "ERR_INSTALL"
  | "ERR_UPGRADE"
  | "ERR_COMPILE"
  // any area: a state machine asked for a move its table forbids (a bug in apprun).
  | "ERR_INTERNAL";

/** The base of every error apprun throws on purpose. */
export class AppRunError extends Error {
  override name = "AppRunError";
  readonly code: AppRunErrorCode;
  constructor(code: AppRunErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** A short, one-line description of any thrown value, for logs. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
    return `${err.message}${cause}`;
  }
  return String(err);
}
