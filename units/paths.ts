/**
 * @module
 * Where unit files go: the admin's dirs for a live install (`/etc/systemd/system`,
 * `~/.config/systemd/user`), the vendor dirs under a packager's staging root
 * (`ROOT/usr/lib/systemd/{system,user}`). Computes paths only; reads and writes nothing.
 */
import { checkAbsolutePath, checkUnitBaseName, fail } from "./_validate.ts";

/** Options for {@linkcode unitPaths}. */
export interface UnitPathsOptions {
  name: string;
  scope: "system" | "user";
  /** A staging tree for packagers (`--root`): vendor unit dirs below it. */
  root?: string;
  /** User scope without root: `$XDG_CONFIG_HOME`, else `home` + `/.config`. */
  configHome?: string;
  home?: string;
}

/** The unit dir and the default files in it. */
export interface UnitPaths {
  dir: string;
  service: string;
  socket: string;
  /** The path of any unit file of the set (`hello-admin.socket`). */
  pathOf(file: string): string;
}

/** Computes where `name`'s units go. Throws {@linkcode UnitOptionError} on a bad option. */
export function unitPaths(opts: UnitPathsOptions): UnitPaths {
  const name = checkUnitBaseName(opts.name, "name");
  if (opts.scope !== "system" && opts.scope !== "user") {
    fail("scope", `must be "system" or "user", got ${JSON.stringify(opts.scope)}`);
  }
  let dir: string;
  if (opts.root !== undefined) {
    // A staging root is often typed with a trailing slash ("--root /tmp/pkg/").
    const given = typeof opts.root === "string" && opts.root.length > 1
      ? opts.root.replace(/\/$/, "")
      : opts.root;
    const root = checkAbsolutePath(given, "root").replace(/^\/$/, "");
    dir = `${root}/usr/lib/systemd/${opts.scope}`;
  } else if (opts.scope === "system") {
    dir = "/etc/systemd/system";
  } else if (opts.configHome !== undefined) {
    dir = `${checkAbsolutePath(opts.configHome, "configHome")}/systemd/user`;
  } else if (opts.home !== undefined) {
    dir = `${checkAbsolutePath(opts.home, "home")}/.config/systemd/user`;
  } else {
    fail("configHome", "user units need configHome ($XDG_CONFIG_HOME) or home");
  }
  const pathOf = (file: string) => {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.:-]*\.(service|socket)$/.test(file)) {
      fail("file", `${JSON.stringify(file)} is not a .service or .socket file name`);
    }
    return `${dir}/${file}`;
  };
  return { dir, service: pathOf(`${name}.service`), socket: pathOf(`${name}.socket`), pathOf };
}
