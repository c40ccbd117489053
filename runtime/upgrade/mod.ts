/**
 * @module
 * The operator side of apprun: `install` (binary or launcher, units, manifest), `upgrade`
 * (check NEW, lock, atomic swap keeping NAME.prev, restart through the fdstore under systemd
 * or the embedded supervisor, health gate, automatic rollback), `rollback`, `status` and
 * `compile`. The commands in cli/ only parse arguments and print; the logic is here.
 */
export { CompileError, InstallError, UpgradeError } from "./errors.ts";
export { installLayout, type Layout, manifestPathOf, type Scope } from "./layout.ts";
export { findManifest, type Manifest, parseManifest } from "./manifest.ts";
export { isHandlerFile, type LauncherOptions, renderLauncher } from "./launcher.ts";
export {
  activate,
  type Activation,
  checkConflicts,
  type InstallOptions,
  type InstallPlan,
  planInstall,
  writeInstall,
} from "./install.ts";
export { summarize, upgrade, type UpgradeOptions, type UpgradeReport } from "./upgrade.ts";
export { rollback, type RollbackOptions, type RollbackReport } from "./rollback.ts";
export {
  findTarget,
  RestartFailure,
  type RestartTarget,
  SupervisorTarget,
  SystemdTarget,
  type TargetStatus,
} from "./target.ts";
export { statusLines } from "./status.ts";
export { compile, COMPILE_PERMISSIONS, renderEntry, sha256Of } from "./compile.ts";
export { buildInfo, embedBuild, versionLine } from "./build_info.ts";
export { formatMs } from "./exec.ts";
