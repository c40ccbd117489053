/**
 * @module
 * What goes into an artifact (docs/design.md, "Shipping"): the tree of an apprun installation
 * as `apprun` itself would run it — apprun's files (bin/, cli/, runtime/, units/, mod.ts,
 * deno.json, package.json) with its npm dependencies in node_modules, Deno's binary where npm
 * puts it (node_modules/deno/deno), and the app: every local module of the handler's graph
 * (`deno info --json`), its project files (deno.json, package.json, lock files), the npm
 * packages it imports from a node_modules directory with their own dependencies, and files
 * given with `--include`. Paths keep their places relative to one base directory (the common
 * ancestor of apprun and the app), so relative imports resolve in the artifact as they do
 * here. Reads files and runs `deno info`; writes nothing.
 *
 * Refused, each with one line: remote modules (https:, jsr:) and npm packages from Deno's
 * global cache — an artifact must not need the network or a cache outside itself.
 */
import { CompileError } from "./errors.ts";
import { runCommand } from "./exec.ts";

/** apprun's own checkout (where `bin/apprun` is). */
export const APPRUN_ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

/** apprun's files an installation needs (directories are taken whole). */
const APPRUN_ENTRIES = ["bin", "cli", "runtime", "units", "mod.ts", "deno.json", "package.json"];
/** The app's project files, taken from its root when present. */
const PROJECT_FILES = [
  "deno.json",
  "deno.jsonc",
  "package.json",
  "deno.lock",
  "package-lock.json",
];

/** One file of the tree: copied from `source` to `rel` (relative to the tree's base). */
export interface TreeFile {
  source: string;
  rel: string;
  isExecutable: boolean;
}

/** The planned tree. Paths in `files` are unique; `rel` never starts with "/" or has "..". */
export interface TreePlan {
  /** The common ancestor of everything, on the build machine. */
  base: string;
  /** apprun's root inside the tree ("" when it is the base). */
  rootRel: string;
  /** The handler inside the tree. */
  handlerRel: string;
  /** Deno's binary on the build machine; goes to `${rootRel}/node_modules/deno/deno`. */
  deno: string;
  /** The app's files (its graph, project files, --include), absolute, for ownership checks. */
  appFiles: string[];
  files: TreeFile[];
}

/** Options for {@linkcode planTree}. */
export interface TreeOptions {
  /** Absolute path of the handler module. */
  handler: string;
  /** More files or directories of the app (absolute), e.g. assets it reads at run time. */
  include?: string[];
  /** The deno that runs `deno info` and goes into the tree (default: the one running us). */
  deno?: string;
}

/** Plans the tree of `handler`. Throws {@linkcode CompileError} naming the first problem. */
export async function planTree(opts: TreeOptions): Promise<TreePlan> {
  const deno = opts.deno ?? Deno.execPath();
  const graph = await moduleGraph(deno, opts.handler);
  const appFiles = new Set<string>(graph.files);
  const appRoot = projectRoot(opts.handler);
  for (const f of PROJECT_FILES) if (isFile(`${appRoot}/${f}`)) appFiles.add(`${appRoot}/${f}`);
  for (const inc of opts.include ?? []) {
    for (const f of walk(inc, { isNodeModulesSkipped: false })) appFiles.add(f);
  }
  const apprunFiles = APPRUN_ENTRIES.flatMap((e) => walk(`${APPRUN_ROOT}/${e}`));
  const npmDirs = new Set<string>();
  addClosure(APPRUN_ROOT, dependenciesOf(APPRUN_ROOT), npmDirs);
  for (const dir of graph.npmPackages) {
    npmDirs.add(dir);
    addClosure(dir, dependenciesOf(dir), npmDirs);
  }
  const npmFiles = [...npmDirs].sort().flatMap((d) => walk(d));
  const every = [...new Set([...apprunFiles, ...appFiles, ...npmFiles])];
  const base = commonAncestor(every);
  const rel = (p: string) => base === "/" ? p.slice(1) : p.slice(base.length + 1);
  const files = every.sort().map((source): TreeFile => {
    const r = rel(source);
    if (/[\n\\]/.test(r)) {
      throw new CompileError(`cannot package a file named ${JSON.stringify(r)}`);
    }
    return { source, rel: r, isExecutable: ((Deno.statSync(source).mode ?? 0) & 0o111) !== 0 };
  });
  return {
    base,
    rootRel: APPRUN_ROOT === base ? "" : rel(APPRUN_ROOT),
    handlerRel: rel(opts.handler),
    deno,
    appFiles: [...appFiles].sort(),
    files: files.filter((f) => !f.rel.endsWith("node_modules/deno/deno")),
  };
}

/** The local files and npm package directories of the handler's module graph. */
async function moduleGraph(
  deno: string,
  handler: string,
): Promise<{ files: string[]; npmPackages: string[] }> {
  const r = await runCommand(deno, ["info", "--json", handler], {
    timeoutMs: 120_000,
    env: { NO_COLOR: "1" },
  });
  if (r.code !== 0) {
    const line = r.stderr.split("\n").map((l) => l.trim()).find((l) => l.startsWith("error")) ??
      r.stderr.trim().split("\n").pop();
    throw new CompileError(`cannot read the module graph of ${handler}: ${line}`);
  }
  const info = JSON.parse(r.stdout) as {
    modules: { kind: string; specifier: string; local?: string; error?: string }[];
  };
  const files: string[] = [];
  const npmPackages = new Set<string>();
  for (const m of info.modules) {
    if (m.error) throw new CompileError(`${handler}: ${m.specifier}: ${m.error}`);
    if (m.kind === "node" || m.specifier.startsWith("node:")) continue;
    if (m.kind === "npm" || m.specifier.startsWith("npm:")) {
      throw new CompileError(
        `${m.specifier} comes from Deno's global npm cache, which an artifact cannot carry: ` +
          `install it into node_modules ("nodeModulesDir": "auto" or "manual" in deno.json)`,
      );
    }
    if (!m.specifier.startsWith("file://")) {
      throw new CompileError(
        `${m.specifier} is a remote module, which an artifact cannot fetch at run time: ` +
          `vendor it ("vendor": true in deno.json) or use it from node_modules`,
      );
    }
    const path = decodeURIComponent(new URL(m.specifier).pathname);
    const pkg = packageDirOf(path);
    if (pkg !== null) npmPackages.add(pkg);
    else files.push(path);
  }
  return { files, npmPackages: [...npmPackages] };
}

/** `…/node_modules/NAME` or `…/node_modules/@scope/NAME` holding `path`, or null. */
function packageDirOf(path: string): string | null {
  const m = /^(.*\/node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(path);
  return m ? m[1] : null;
}

/** The nearest directory at or above the handler's with a project file, else the handler's. */
function projectRoot(handler: string): string {
  const start = handler.slice(0, handler.lastIndexOf("/")) || "/";
  for (let dir = start;; dir = dir.slice(0, dir.lastIndexOf("/")) || "/") {
    if (PROJECT_FILES.some((f) => isFile(`${dir}/${f}`))) return dir;
    if (dir === "/") return start;
  }
}

interface PackageJson {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

/** What a package needs at run time: its dependencies, and optional ones that are present. */
function dependenciesOf(dir: string): string[] {
  let pkg: PackageJson;
  try {
    pkg = JSON.parse(Deno.readTextFileSync(`${dir}/package.json`));
  } catch {
    return [];
  }
  const names = Object.keys({
    ...pkg.dependencies,
    ...pkg.optionalDependencies,
    ...pkg.peerDependencies,
  });
  // Deno's own package is the runtime: its binary goes in separately, its per-platform
  // optional packages are the same binary again.
  return names.filter((n) => !(dir === APPRUN_ROOT && n === "deno"));
}

/** Adds each of `names`, resolved as Node does from `from`, and their dependencies. */
function addClosure(from: string, names: string[], out: Set<string>): void {
  for (const name of names) {
    const dir = resolvePackage(from, name);
    if (dir === null || out.has(dir)) continue; // an optional dependency not installed here
    out.add(dir);
    addClosure(dir, dependenciesOf(dir), out);
  }
}

/** The directory of package `name` as seen from `from` (node_modules up the tree), or null. */
function resolvePackage(from: string, name: string): string | null {
  for (let dir = from;; dir = dir.slice(0, dir.lastIndexOf("/")) || "/") {
    if (!dir.endsWith("/node_modules")) {
      const candidate = `${dir === "/" ? "" : dir}/node_modules/${name}`;
      if (isFile(`${candidate}/package.json`)) return candidate;
    }
    if (dir === "/") return null;
  }
}

/** Every regular file at or below `path` (symlinks followed to files; dot files skipped). */
function walk(path: string, opts = { isNodeModulesSkipped: true }): string[] {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (err) {
    throw new CompileError(`${path} does not exist`, { cause: err });
  }
  if (info.isFile) return [path];
  if (!info.isDirectory) return [];
  const out: string[] = [];
  for (const e of [...Deno.readDirSync(path)].sort((a, b) => a.name < b.name ? -1 : 1)) {
    if (e.name.startsWith(".")) continue;
    if (e.name === "node_modules" && opts.isNodeModulesSkipped) continue;
    const p = `${path}/${e.name}`;
    if (e.isSymlink) {
      const target = Deno.statSync(p);
      if (target.isFile) out.push(p);
      continue;
    }
    out.push(...walk(p, opts));
  }
  return out;
}

function commonAncestor(paths: string[]): string {
  let parts = paths[0].split("/").slice(0, -1);
  for (const p of paths.slice(1)) {
    const q = p.split("/");
    let i = 0;
    while (i < parts.length && i < q.length - 1 && parts[i] === q[i]) i++;
    parts = parts.slice(0, i);
  }
  return parts.join("/") || "/";
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}
