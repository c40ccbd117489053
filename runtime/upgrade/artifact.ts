/**
 * @module
 * `apprun compile --format apprun`: one executable file that needs nothing from the build
 * machine — no checkout, no node_modules, no network, no Deno cache. It is a `/bin/sh` header
 * (artifact_header.ts) followed by a payload of two gzip'd tar members: Deno's binary (from
 * the npm `deno` package, where npm puts it) and the tree of artifact_tree.ts (apprun, its
 * npm dependencies, the app and its own) with `.apprun/build.json` (what `version` reports:
 * the handler's hash, apprun's and Deno's versions) and `.apprun/SHA256SUMS` (every file's
 * hash; the artifact's identity is the hash of that list). The tar members are reproducible
 * (sorted, fixed owner and mtime, `gzip -n`); the Deno member, 90% of the bytes and 5 s of
 * gzip, is cached per Deno binary in the build cache (`$APPRUN_CACHE_DIR`, else
 * `~/.cache/apprun/build`). Writes the output by temp + rename, then runs `OUTPUT version`.
 */
import { APPRUN_VERSION } from "../version.ts";
import { payloadDelimiter, renderHeader } from "./artifact_header.ts";
import { planTree, type TreePlan } from "./artifact_tree.ts";
import { type BuildRecord, versionLineOf } from "./build_info.ts";
import { CompileError } from "./errors.ts";
import { lastLine, runCommand } from "./exec.ts";

/** Options for {@linkcode buildArtifact}. Paths absolute. */
export interface ArtifactOptions {
  handler: string;
  output: string;
  /** The service's name (default: the output's file name). */
  name?: string;
  /** The app's own version (a package's), shown by `version`. */
  appVersion?: string;
  /** More files or directories the app needs at run time. */
  include?: string[];
}

/** What was built. */
export interface BuiltArtifact {
  versionLine: string;
  /** Hex SHA-256 of SHA256SUMS: the unpacked directory's name. */
  tree: string;
  bytes: number;
  /** The app's own files, for ownership checks. */
  appFiles: string[];
  ms: number;
}

const TAR_FLAGS = [
  "--sort=name",
  "--owner=0",
  "--group=0",
  "--numeric-owner",
  "--mtime=@0",
  "--format=gnu",
  "--use-compress-program=gzip -n -6",
];

/** Builds the artifact. Throws {@linkcode CompileError} with one line saying why not. */
export async function buildArtifact(opts: ArtifactOptions): Promise<BuiltArtifact> {
  const t0 = performance.now();
  try {
    if (!Deno.statSync(opts.handler).isFile) throw new Error("not a file");
  } catch (err) {
    throw new CompileError(`handler ${opts.handler} is not a file`, { cause: err });
  }
  const name = opts.name ?? opts.output.slice(opts.output.lastIndexOf("/") + 1);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/.test(name)) {
    throw new CompileError(`"${name}" is not a service name (letters, digits, "_.:-")`);
  }
  const plan = await planTree({ handler: opts.handler, include: opts.include });
  const work = await Deno.makeTempDir({ prefix: "apprun-artifact-" });
  try {
    const record: BuildRecord = {
      format: 1,
      name,
      ...(opts.appVersion ? { appVersion: opts.appVersion } : {}),
      handler: plan.handlerRel,
      sha256: await sha256File(opts.handler),
      apprun: APPRUN_VERSION,
      deno: Deno.version.deno,
      arch: Deno.build.arch,
      builtAt: new Date().toISOString(),
    };
    const runtime = await runtimeMember(plan, work);
    const sums = [[runtime.sha256, `${prefix(plan.rootRel)}node_modules/deno/deno`]];
    const stage = `${work}/tree`;
    for (const f of plan.files) {
      const to = `${stage}/${f.rel}`;
      await Deno.mkdir(to.slice(0, to.lastIndexOf("/")), { recursive: true });
      await Deno.copyFile(f.source, to);
      await Deno.chmod(to, f.isExecutable ? 0o755 : 0o644);
      sums.push([await sha256File(to), f.rel]);
    }
    await Deno.mkdir(`${stage}/.apprun`);
    await Deno.writeTextFile(`${stage}/.apprun/build.json`, JSON.stringify(record, null, 2) + "\n");
    sums.push([await sha256File(`${stage}/.apprun/build.json`), ".apprun/build.json"]);
    const list = sums.sort((a, b) => a[1] < b[1] ? -1 : 1).map(([h, p]) => `${h}  ${p}\n`).join("");
    await Deno.writeTextFile(`${stage}/.apprun/SHA256SUMS`, list);
    const tree = await sha256Bytes(new TextEncoder().encode(list));
    await tar(["-C", stage, "--file", `${work}/tree.tar.gz`, "."]);
    const payload = [await Deno.readFile(runtime.path), await Deno.readFile(`${work}/tree.tar.gz`)];
    const versionLine = versionLineOf(record);
    const header = renderHeader({
      name,
      versionLine,
      tree,
      rootRel: plan.rootRel,
      handlerRel: plan.handlerRel,
      arch: Deno.build.arch,
      payloadLength: payload[0].length + payload[1].length,
    });
    const delimiter = payloadDelimiter(tree);
    const trailer = new TextEncoder().encode(`\n${delimiter}\n`);
    for (const part of payload) {
      if (contains(part, trailer)) throw new CompileError("the payload contains its own end line");
    }
    const bytes = await writeAtomically(opts.output, [
      new TextEncoder().encode(header),
      ...payload,
      trailer,
    ]);
    await verify(opts.output, versionLine);
    return { versionLine, tree, bytes, appFiles: plan.appFiles, ms: performance.now() - t0 };
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/** `rel/` or "" for the tree itself. */
function prefix(rel: string): string {
  return rel === "" ? "" : `${rel}/`;
}

/**
 * The gzip'd tar member holding Deno: `ROOT/node_modules/deno/deno` and the
 * `node_modules/.bin/deno` link npm makes, from the build cache when it has it.
 */
async function runtimeMember(
  plan: TreePlan,
  work: string,
): Promise<{ path: string; sha256: string }> {
  const st = Deno.statSync(plan.deno);
  const key = await sha256Bytes(
    new TextEncoder().encode(
      [plan.deno, st.size, st.mtime?.getTime(), st.ino, plan.rootRel, TAR_FLAGS].join("\n"),
    ),
  );
  const cache = buildCacheDir();
  const cached = `${cache}/deno-${key.slice(0, 32)}.tar.gz`;
  try {
    const sha256 = (await Deno.readTextFile(`${cached}.sha256`)).trim();
    if (/^[0-9a-f]{64}$/.test(sha256) && Deno.statSync(cached).isFile) {
      return { path: cached, sha256 };
    }
  } catch {
    // Not cached yet.
  }
  const sha256 = await sha256File(plan.deno);
  const links = `${work}/runtime`;
  const bin = `${links}/${prefix(plan.rootRel)}node_modules/.bin`;
  await Deno.mkdir(bin, { recursive: true });
  Deno.symlinkSync("../deno/deno", `${bin}/deno`);
  const denoDir = plan.deno.slice(0, plan.deno.lastIndexOf("/"));
  const denoFile = plan.deno.slice(plan.deno.lastIndexOf("/") + 1);
  const out = `${work}/runtime.tar.gz`;
  await tar([
    "--file",
    out,
    "-C",
    links,
    `${prefix(plan.rootRel)}node_modules/.bin/deno`,
    "-C",
    denoDir,
    `--transform=s|^${denoFile.replace(/[.^$*[\]\\|]/g, "\\$&")}$|${
      prefix(plan.rootRel)
    }node_modules/deno/deno|`,
    denoFile,
  ]);
  try {
    await Deno.mkdir(cache, { recursive: true });
    const temp = `${cached}.${Deno.pid}.tmp`;
    await Deno.copyFile(out, temp);
    await Deno.rename(temp, cached);
    await Deno.writeTextFile(`${cached}.sha256.${Deno.pid}`, `${sha256}\n`);
    await Deno.rename(`${cached}.sha256.${Deno.pid}`, `${cached}.sha256`);
  } catch {
    // No cache here: the next build gzips Deno again.
  }
  return { path: out, sha256 };
}

/** Where built Deno members are kept between builds. */
export function buildCacheDir(): string {
  const explicit = Deno.env.get("APPRUN_CACHE_DIR");
  if (explicit) return explicit;
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  const home = Deno.env.get("HOME");
  return `${xdg || `${home ?? "/tmp"}/.cache`}/apprun/build`;
}

async function tar(args: string[]): Promise<void> {
  const r = await runCommand("tar", ["--create", ...TAR_FLAGS, ...args], { timeoutMs: 300_000 });
  if (r.code !== 0) throw new CompileError(`tar failed: ${lastLine(r)}`);
}

async function writeAtomically(path: string, parts: Uint8Array[]): Promise<number> {
  const temp = `${path}.${Deno.pid}.tmp`;
  let bytes = 0;
  try {
    const file = await Deno.open(temp, { write: true, create: true, truncate: true, mode: 0o755 });
    try {
      for (const part of parts) {
        for (let off = 0; off < part.length;) off += await file.write(part.subarray(off));
        bytes += part.length;
      }
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.chmod(temp, 0o755);
    await Deno.rename(temp, path);
  } catch (err) {
    await Deno.remove(temp).catch(() => {});
    throw new CompileError(`cannot write ${path}: ${(err as Error).message}`, { cause: err });
  }
  return bytes;
}

/** `OUTPUT version` must print the build's line. */
async function verify(output: string, versionLine: string): Promise<void> {
  const r = await runCommand(output, ["version"], { timeoutMs: 30_000 });
  if (r.code === 0 && r.stdout.trim() === versionLine) return;
  await Deno.remove(output).catch(() => {});
  throw new CompileError(`the artifact does not run: \`${output} version\`: ${lastLine(r)}`);
}

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  const first = needle[0];
  for (let i = haystack.indexOf(first); i >= 0; i = haystack.indexOf(first, i + 1)) {
    let j = 1;
    while (j < needle.length && haystack[i + j] === needle[j]) j++;
    if (j === needle.length) return true;
  }
  return false;
}

/** Hex SHA-256 of a file. */
export async function sha256File(path: string): Promise<string> {
  return await sha256Bytes(await Deno.readFile(path));
}

async function sha256Bytes(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}
