/**
 * @module
 * The install manifest, `apprun.json` beside the installed binary: what `apprun install`
 * wrote (name, scope, binary, units, listeners, health URL) so that `upgrade`, `rollback` and
 * `status` need only the name. A versioned JSON document with a validating reader that
 * refuses unknown versions. Reads and writes nothing but that file.
 */
import type { Listener } from "../../units/mod.ts";
import { UpgradeError } from "./errors.ts";
import { manifestPathsOf, type Scope } from "./layout.ts";

/** The manifest's format version. */
export const MANIFEST_FORMAT = 1;

/** `apprun.json`, format 1. Paths are as the service sees them (no staging root). */
export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  name: string;
  scope: Scope;
  /** The installed binary (BIN). */
  bin: string;
  /**
   * What BIN is: a copied executable, or an artifact apprun built from a handler file.
   * ("launcher": a script into a checkout, written by apprun before 0.2; still read.)
   */
  kind: "binary" | "artifact" | "launcher";
  /** The binary or handler file it was installed from. */
  source: string;
  units: string[];
  listeners: Listener[];
  /** Polled for a 2xx after each upgrade (`--health`). */
  health?: string;
  drainTimeoutMs: number;
  /** The apprun version that installed it. */
  apprun: string;
  installedAt: string;
}

/** The manifest as written: pretty JSON and a newline. */
export function renderManifest(m: Manifest): string {
  return JSON.stringify(m, null, 2) + "\n";
}

/** Parses and checks a manifest; `path` is only for messages. Throws {@linkcode UpgradeError}. */
export function parseManifest(text: string, path: string): Manifest {
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(text);
  } catch (err) {
    throw new UpgradeError(`${path} is not JSON`, { cause: err });
  }
  const bad = (what: string): never => {
    throw new UpgradeError(`${path}: ${what}`);
  };
  if (m === null || typeof m !== "object") bad("not an object");
  if (m.format !== MANIFEST_FORMAT) {
    bad(`format ${JSON.stringify(m.format)} is not ${MANIFEST_FORMAT} (a newer apprun wrote it?)`);
  }
  for (const key of ["name", "bin", "source", "apprun", "installedAt"]) {
    if (typeof m[key] !== "string" || m[key] === "") bad(`"${key}" must be a non-empty string`);
  }
  if (!(m.bin as string).startsWith("/")) bad(`"bin" must be an absolute path`);
  if (m.scope !== "system" && m.scope !== "user") bad(`"scope" must be "system" or "user"`);
  if (!["binary", "artifact", "launcher"].includes(m.kind as string)) {
    bad(`"kind" must be "binary" or "artifact"`);
  }
  if (!Array.isArray(m.units) || m.units.some((u) => typeof u !== "string")) {
    bad(`"units" must be a list of paths`);
  }
  if (!Array.isArray(m.listeners)) bad(`"listeners" must be a list`);
  if (m.health !== undefined && typeof m.health !== "string") bad(`"health" must be a URL`);
  if (typeof m.drainTimeoutMs !== "number") bad(`"drainTimeoutMs" must be a number`);
  return m as unknown as Manifest;
}

/** Options for {@linkcode findManifest}. */
export interface FindManifestOptions {
  name: string;
  /** Look only in this scope; undefined: system first, then user. */
  scope?: Scope;
  home?: string;
}

/** Reads NAME's manifest. Throws {@linkcode UpgradeError} naming every path it tried. */
export async function findManifest(
  opts: FindManifestOptions,
): Promise<{ manifest: Manifest; path: string }> {
  const scopes: Scope[] = opts.scope ? [opts.scope] : ["system", "user"];
  const tried: string[] = [];
  for (const path of scopes.flatMap((s) => manifestPathsOf(opts.name, s, opts.home))) {
    tried.push(path);
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue;
      throw new UpgradeError(`cannot read ${path}`, { cause: err });
    }
    const manifest = parseManifest(text, path);
    if (manifest.name !== opts.name) {
      throw new UpgradeError(`${path} describes "${manifest.name}", not "${opts.name}"`);
    }
    return { manifest, path };
  }
  throw new UpgradeError(
    `${opts.name} is not installed: no ${tried.join(" nor ")} (install it with apprun install)`,
  );
}
