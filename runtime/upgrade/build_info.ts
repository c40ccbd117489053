/**
 * @module
 * What a compiled apprun knows about its build: the service's name and the embedded
 * handler's file and content hash, registered by the entry module `apprun compile` generates
 * (before the command runs). `versionLine()` is what `version` prints — for a compiled binary
 * the same shape as a launcher's (`NAME app.ts sha256:… (apprun X)`), else apprun's version.
 */
import { APPRUN_VERSION } from "../version.ts";

/** Registered by a compiled binary's entry module. */
export interface BuildInfo {
  name: string;
  /** The handler's path at build time. */
  handler: string;
  /** Hex SHA-256 of the handler file. */
  sha256: string;
  builtAt: string;
}

const BUILD = Symbol.for("apprun.build");

/** Registers this binary's build (the generated entry module calls it). */
export function embedBuild(info: BuildInfo): void {
  (globalThis as Record<symbol, unknown>)[BUILD] = { ...info };
}

/** This binary's build, or null when apprun runs from a checkout. */
export function buildInfo(): BuildInfo | null {
  return ((globalThis as Record<symbol, unknown>)[BUILD] ?? null) as BuildInfo | null;
}

/** The line `apprun version` prints. */
export function versionLine(): string {
  const b = buildInfo();
  if (b === null) return APPRUN_VERSION;
  const file = b.handler.slice(b.handler.lastIndexOf("/") + 1);
  return `${b.name} ${file} sha256:${b.sha256.slice(0, 12)} (apprun ${APPRUN_VERSION})`;
}
