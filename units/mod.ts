/**
 * @module
 * Unit-file generation for `apprun install`: pure functions from typed options to the text
 * of apprun's `.socket` and `.service` units (and where they go). Bad options throw
 * `UnitOptionError` (an `AppRunError` with code `ERR_UNIT_OPTION`).
 */
export { UnitOptionError } from "./errors.ts";
export {
  checkListener,
  DEFAULT_FD_NAME,
  type Listener,
  listenStreamValue,
  parseListener,
} from "./listeners.ts";
export { renderSocketUnit, type SocketUnitOptions } from "./socket.ts";
export {
  FD_HEADROOM,
  HANDOFF_MARGIN,
  MIN_RESTARTS_PER_MINUTE,
  renderServiceUnit,
  type ServiceUnitOptions,
} from "./service.ts";
export { type RenderedUnit, renderUnits, type UnitSetOptions } from "./render.ts";
export { type UnitPaths, unitPaths, type UnitPathsOptions } from "./paths.ts";
