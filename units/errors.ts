/**
 * @module
 * The one error units/ throws: an option that would make a bad unit file. It names the option
 * (as the caller spelled it, with an index for list items) and says why; code ERR_UNIT_OPTION.
 */
import { AppRunError } from "../runtime/errors.ts";

/** A unit-file option that cannot be rendered. `option` is e.g. `"listeners[1].port"`. */
export class UnitOptionError extends AppRunError {
  override name = "UnitOptionError";
  readonly option: string;
  constructor(option: string, reason: string, options?: ErrorOptions) {
    super("ERR_UNIT_OPTION", `${option}: ${reason}`, options);
    this.option = option;
  }
}
