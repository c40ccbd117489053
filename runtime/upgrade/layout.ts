/**
 * @module
 * Where an installed service's files live. The installed binary BIN is
 * `/usr/local/lib/apprun/NAME/NAME` (system), `~/.local/lib/apprun/NAME/NAME` (user) or
 * `ROOT/usr/lib/apprun/NAME/NAME` in a packager's staging tree (where ExecStart names
 * `/usr/lib/apprun/NAME/NAME`). Beside it: `NAME.prev` (the previous binary, kept by
 * upgrades), `NAME.lock` (one upgrade at a time) and `apprun.json` (the manifest). Computes
 * paths only; touches no file.
 */
import { resolve } from "node:path";
import { type UnitPaths, unitPaths } from "../../units/mod.ts";

/** File names apprun treats as handler modules (built into an artifact), not executables. */
const HANDLER_FILE = /\.(ts|mts|cts|tsx|js|mjs|cjs|jsx)$/;

/** Whether `path` names a handler module (by its extension). */
export function isHandlerFile(path: string): boolean {
  return HANDLER_FILE.test(path);
}

/** `path` made absolute against the working directory and normalized (no `.`, `..`, `//`). */
export function absolutePath(path: string, cwd = Deno.cwd()): string {
  return resolve(cwd, path);
}

/** Which service manager a service belongs to. */
export type Scope = "system" | "user";

/** Options for {@linkcode installLayout}. */
export interface LayoutOptions {
  name: string;
  scope: Scope;
  /** A packager's staging tree: every path below it, ExecStart without it. */
  root?: string;
  /** `$HOME`, for user installs. */
  home?: string;
  /** `$XDG_CONFIG_HOME`, for user units (else `home/.config`). */
  configHome?: string;
}

/** Every path of one install. `bin` is as the service sees it; `*Staged` where we write. */
export interface Layout {
  name: string;
  scope: Scope;
  /** BIN as ExecStart names it (no staging root). */
  bin: string;
  /** The directory holding BIN, the manifest, `.prev` and the lock, as we write it. */
  dirStaged: string;
  binStaged: string;
  manifestStaged: string;
  units: UnitPaths;
  /** The unit paths as systemd sees them (no staging root), for the manifest. */
  unitsFinal: UnitPaths;
}

/** The library directory of `scope` (no staging root). */
export function libDir(scope: Scope, home: string | undefined, isStaged: boolean): string {
  if (isStaged) return "/usr/lib/apprun";
  if (scope === "system") return "/usr/local/lib/apprun";
  if (!home) throw new Error("user installs need $HOME");
  return `${home.replace(/\/$/, "")}/.local/lib/apprun`;
}

/**
 * Where a package (`apprun package`) keeps the installed copy of its artifact, its history
 * and manifest: the package's files stay as dpkg wrote them.
 */
export const PACKAGE_LIB_DIR = "/var/lib/apprun";

/** The directories holding installs of `scope` (no staging root), in lookup order. */
export function libDirs(scope: Scope, home?: string): string[] {
  if (scope === "system") return [libDir("system", home, false), PACKAGE_LIB_DIR];
  return home ? [libDir("user", home, false)] : [];
}

/** Where `name`'s manifest can be in `scope`, in lookup order. */
export function manifestPathsOf(name: string, scope: Scope, home?: string): string[] {
  return libDirs(scope, home).map((d) => `${d}/${name}/apprun.json`);
}

/** Computes the layout. Throws `UnitOptionError` for a bad name or root. */
export function installLayout(opts: LayoutOptions): Layout {
  const units = unitPaths({
    name: opts.name,
    scope: opts.scope,
    root: opts.root,
    home: opts.home,
    configHome: opts.configHome,
  });
  const isStaged = opts.root !== undefined;
  const root = isStaged ? units.dir.slice(0, units.dir.indexOf("/usr/lib/systemd/")) : "";
  const dir = `${libDir(opts.scope, opts.home, isStaged)}/${opts.name}`;
  const unitsFinal = isStaged
    ? unitPaths({ name: opts.name, scope: opts.scope, root: "/" })
    : units;
  return {
    name: opts.name,
    scope: opts.scope,
    bin: `${dir}/${opts.name}`,
    dirStaged: `${root}${dir}`,
    binStaged: `${root}${dir}/${opts.name}`,
    manifestStaged: `${root}${dir}/apprun.json`,
    units,
    unitsFinal,
  };
}
