/**
 * @module
 * The operator side of apprun: `compile` (an artifact that needs nothing from the build
 * machine, or `deno compile`'s binary), `install` (an artifact or a binary, units, manifest),
 * `upgrade` (copy NEW, check it in the service's sandbox, lock, atomic swap keeping the
 * history of versions, restart through the fdstore under systemd or the embedded supervisor,
 * health gate, automatic rollback with the failed start's last lines), `rollback`, `status`
 * and `package` (a .deb whose upgrades hand off). The commands in cli/ only parse arguments
 * and print; the logic is here.
 */
export { CompileError, InstallError, UpgradeError } from "./errors.ts";
export {
  absolutePath,
  installLayout,
  isHandlerFile,
  type Layout,
  libDirs,
  manifestPathsOf,
  PACKAGE_LIB_DIR,
  type Scope,
} from "./layout.ts";
export { findManifest, type Manifest, parseManifest } from "./manifest.ts";
export {
  activate,
  type Activation,
  checkConflicts,
  type InstallOptions,
  type InstallPlan,
  planInstall,
  type ServiceSettings,
  writeInstall,
} from "./install.ts";
export { summarize, upgrade, type UpgradeOptions, type UpgradeReport } from "./upgrade.ts";
export { rollback, type RollbackOptions, type RollbackReport } from "./rollback.ts";
export {
  describeNext,
  findTarget,
  type NextVersion,
  nextVersion,
  NoTarget,
  RestartFailure,
  type RestartTarget,
  SupervisorTarget,
  SystemdTarget,
  type TargetStatus,
} from "./target.ts";
export { type HistoryEntry, VersionHistory } from "./history.ts";
export { type InstalledVersions, statusLines } from "./status.ts";
export {
  compile,
  COMPILE_PERMISSIONS,
  type CompileFormat,
  renderEntry,
  sha256Of,
} from "./compile.ts";
export { type ArtifactOptions, buildArtifact, type BuiltArtifact } from "./artifact.ts";
export { buildPackage, type BuiltPackage, type PackageOptions } from "./package.ts";
export {
  maintainerScripts,
  packagedBin,
  packagePaths,
  type UpgradeStyle,
} from "./package_scripts.ts";
export { buildInfo, embedBuild, versionLine } from "./build_info.ts";
export { formatMs, shellQuote } from "./exec.ts";
