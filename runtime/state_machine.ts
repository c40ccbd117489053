/**
 * @module
 * The one way apprun's state machines change state: a table of allowed moves, checked on every
 * move. A move the table forbids is a bug in apprun, never a peer's doing — it throws
 * {@linkcode IllegalMoveError} naming the machine and both states. Used by the HTTP connection,
 * the WebSocket session and frame parser, and the supervisor's worker.
 */
import { AppRunError } from "./errors.ts";

/** For each state, the states it may move to. */
export type MoveTable<S extends string> = { readonly [K in S]: readonly S[] };

/** A move the table forbids. */
export class IllegalMoveError extends AppRunError {
  override name = "IllegalMoveError";
  constructor(what: string, from: string, to: string) {
    super("ERR_INTERNAL", `internal error: ${what} cannot move from "${from}" to "${to}"`);
  }
}

/** `to` when `table` allows `from → to`; throws {@linkcode IllegalMoveError} otherwise. */
export function checkedMove<S extends string>(
  table: MoveTable<S>,
  from: S,
  to: S,
  what: string,
): S {
  if (!table[from].includes(to)) throw new IllegalMoveError(what, from, to);
  return to;
}
