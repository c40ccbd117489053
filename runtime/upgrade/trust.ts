/**
 * @module
 * What root may take as NEW (docs/design.md, "Upgrades"): `sudo apprun upgrade` copies NEW
 * into the service's directory and the service (and its checks) run it, so a NEW that
 * another user can change — owned by them, writable by group or others, or in a directory
 * they can write — would be their code in a root-managed service. Run as root, the upgrade
 * accepts only files owned by root and writable by root alone, in directories only root can
 * change. As any other user, nothing is checked: the service runs as that user anyway.
 * Reads file metadata only.
 */
import { UpgradeError } from "./errors.ts";

/** Whether the checks apply: we run as root. */
export function isRootCaller(): boolean {
  return Deno.uid() === 0;
}

/** Throws {@linkcode UpgradeError} unless `info` (of `path`) is a file only root can change. */
export function requireRootOwned(path: string, info: Deno.FileInfo, what = "NEW"): void {
  if (info.uid !== 0) {
    throw new UpgradeError(
      `${what} ${path} is owned by uid ${info.uid}: run as root, apprun installs only files ` +
        `root owns (check it, then chown root:root it)`,
    );
  }
  if (((info.mode ?? 0) & 0o022) !== 0) {
    throw new UpgradeError(
      `${what} ${path} is writable by ${
        ((info.mode ?? 0) & 0o002) ? "others" : "its group"
      }: run as root, apprun installs only files root alone can change`,
    );
  }
}

/**
 * Each of `paths` and every directory above it must be root's alone (a directory others can
 * write lets them swap the file; a sticky one, like /tmp, does not for files root owns).
 */
export function requireRootOwnedTree(paths: readonly string[], what = "NEW"): void {
  const seen = new Set<string>();
  for (const path of paths) {
    requireRootOwned(path, Deno.statSync(path), what);
    for (let dir = parent(path); !seen.has(dir); dir = parent(dir)) {
      seen.add(dir);
      const info = Deno.statSync(dir);
      const isSticky = ((info.mode ?? 0) & 0o1000) !== 0;
      if (info.uid !== 0 || (((info.mode ?? 0) & 0o022) !== 0 && !isSticky)) {
        throw new UpgradeError(
          `${what} ${path} is in ${dir}, which uid ${info.uid}${
            info.uid === 0 ? "'s group or others" : ""
          } can change: run as root, apprun installs only files in directories root alone can change`,
        );
      }
      if (dir === "/") break;
    }
  }
}

function parent(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}
