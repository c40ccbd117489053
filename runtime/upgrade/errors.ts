/**
 * @module
 * The errors of the operator commands: {@linkcode InstallError} (ERR_INSTALL),
 * {@linkcode UpgradeError} (ERR_UPGRADE) and {@linkcode CompileError} (ERR_COMPILE). Each
 * message is one line meant for the operator; `cause` keeps the underlying error.
 */
import { AppRunError } from "../errors.ts";

/** `apprun install` cannot do what it was asked (a foreign unit, an unreadable binary, …). */
export class InstallError extends AppRunError {
  override name = "InstallError";
  constructor(message: string, options?: ErrorOptions) {
    super("ERR_INSTALL", message, options);
  }
}

/** `apprun upgrade|rollback|status` cannot go on (NEW refused, locked, nothing to restart, …). */
export class UpgradeError extends AppRunError {
  override name = "UpgradeError";
  constructor(message: string, options?: ErrorOptions) {
    super("ERR_UPGRADE", message, options);
  }
}

/** `apprun compile` failed (no denort, deno compile refused the handler, …). */
export class CompileError extends AppRunError {
  override name = "CompileError";
  constructor(message: string, options?: ErrorOptions) {
    super("ERR_COMPILE", message, options);
  }
}
