/**
 * @module
 * What a built apprun knows about its build: the service's name, the handler and its content
 * hash, apprun's version. Two sources: an artifact's `.apprun/build.json`, named by
 * `$APPRUN_BUILD` (its header sets it before running apprun), and, in a `deno compile`
 * binary, what the generated entry module registered (`embedBuild`). `versionLine()` is what
 * `version` prints — `NAME [APP-VERSION] app.ts sha256:… (apprun X)` for a build, else
 * apprun's version. Reads that one file; writes nothing.
 */
import { APPRUN_VERSION } from "../version.ts";

/** An artifact's `.apprun/build.json`, format 1. */
export interface BuildRecord {
  format: 1;
  name: string;
  /** The app's own version (`apprun package --version`), when given. */
  appVersion?: string;
  /** The handler, relative to the unpacked tree. */
  handler: string;
  /** Hex SHA-256 of the handler file. */
  sha256: string;
  apprun: string;
  deno: string;
  arch: string;
  builtAt: string;
}

/** What `version`, `install` and `upgrade` need of a build. */
export interface BuildInfo {
  name: string;
  appVersion?: string;
  /** The handler: its path at build time (deno compile) or in the unpacked tree. */
  handler: string;
  sha256: string;
  builtAt: string;
  /** The apprun version that built it. */
  apprun?: string;
  /** The artifact file itself (APPRUN_ARTIFACT), for `install` without a source. */
  artifact?: string;
}

const BUILD = Symbol.for("apprun.build");

/** Registers this binary's build (the entry module `apprun compile --format deno` writes). */
export function embedBuild(info: BuildInfo): void {
  (globalThis as Record<symbol, unknown>)[BUILD] = { ...info };
}

let fromFile: BuildInfo | null | undefined;

/** This build, or null when apprun runs from a checkout. */
export function buildInfo(): BuildInfo | null {
  const embedded = (globalThis as Record<symbol, unknown>)[BUILD] as BuildInfo | undefined;
  if (embedded) return embedded;
  if (fromFile === undefined) fromFile = readBuildFile();
  return fromFile;
}

function readBuildFile(): BuildInfo | null {
  const path = Deno.env.get("APPRUN_BUILD");
  if (!path) return null;
  try {
    const r = JSON.parse(Deno.readTextFileSync(path)) as BuildRecord;
    if (r.format !== 1 || typeof r.name !== "string" || typeof r.handler !== "string") return null;
    const tree = path.slice(0, path.lastIndexOf("/.apprun/"));
    return {
      name: r.name,
      ...(r.appVersion ? { appVersion: r.appVersion } : {}),
      handler: `${tree}/${r.handler}`,
      sha256: r.sha256,
      builtAt: r.builtAt,
      apprun: r.apprun,
      artifact: Deno.env.get("APPRUN_ARTIFACT") || undefined,
    };
  } catch {
    return null;
  }
}

/** The version line of a build. */
export function versionLineOf(
  b: { name: string; appVersion?: string; handler: string; sha256: string; apprun?: string },
): string {
  const file = b.handler.slice(b.handler.lastIndexOf("/") + 1);
  const app = b.appVersion ? ` ${b.appVersion}` : "";
  return `${b.name}${app} ${file} sha256:${b.sha256.slice(0, 12)} (apprun ${
    b.apprun ?? APPRUN_VERSION
  })`;
}

/** The line `apprun version` prints. */
export function versionLine(): string {
  const b = buildInfo();
  return b === null ? APPRUN_VERSION : versionLineOf(b);
}
