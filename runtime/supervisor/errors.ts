/**
 * @module
 * The supervisor's error class. Raised for bad options, a worker that never became ready, a
 * start limit hit, a control request that failed; carries `ERR_SUPERVISOR` and the cause.
 */
import { AppRunError } from "../errors.ts";

/** An error of the embedded supervisor (`code` is always `ERR_SUPERVISOR`). */
export class SupervisorError extends AppRunError {
  override name = "SupervisorError";
  constructor(message: string, options?: ErrorOptions) {
    super("ERR_SUPERVISOR", message, options);
  }
}
