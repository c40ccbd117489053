/**
 * @module
 * The supervisor's error class. Raised for bad options, a worker that never became ready, a
 * start limit hit, a control request that failed; carries `ERR_SUPERVISOR` and the cause.
 */
import { AppRunError } from "../errors.ts";

/** An error of the embedded supervisor (`code` is always `ERR_SUPERVISOR`). */
export class SupervisorError extends AppRunError {
  override name = "SupervisorError";
  /** For a worker that failed to start: its last `STATUS=` (its own words on why), if any. */
  readonly statusText: string | undefined;
  constructor(message: string, options?: ErrorOptions & { statusText?: string }) {
    super("ERR_SUPERVISOR", message, options);
    this.statusText = options?.statusText;
  }
}
