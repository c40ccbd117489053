/**
 * @module
 * Command-line parsing shared by the commands (cli/) and the worker, which reads `serve`'s
 * options itself when bin/apprun starts it directly: `parseArgs` refusals as one-line usage
 * errors, durations ("30s", "500ms", "2m", plain seconds), byte sizes ("64k", "16MiB"), ports.
 * Each bad value is a `UsageError` naming the option. No command logic here.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { AppRunError } from "./errors.ts";

/** A command line apprun cannot run: exit status 2. */
export class UsageError extends AppRunError {
  override name = "UsageError";
  constructor(message: string) {
    super("ERR_USAGE", message);
  }
}

/**
 * `parseArgs` whose refusals (an unknown option, a missing value) become one-line
 * {@linkcode UsageError}s, as every apprun command reports them.
 */
export function parseCommandLine<T extends ParseArgsConfig>(
  config: T,
): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    throw new UsageError((err as Error).message.replaceAll("\n", " "));
  }
}

/** Parses a duration to milliseconds. */
export function parseDuration(option: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new UsageError(`--${option}: "${value}" is not a duration (e.g. 30s, 500ms, 2m)`);
  const n = Number(m[1]);
  const unit = m[2] ?? "s";
  const factor = unit === "ms" ? 1 : unit === "s" ? 1000 : unit === "m" ? 60_000 : 3_600_000;
  return Math.round(n * factor);
}

/** Parses a byte size ("65536", "64k", "16M", "1GiB"). */
export function parseBytes(option: string, value: string): number {
  const m = /^(\d+)\s*([kmg]?)(i?b)?$/i.exec(value.trim());
  if (!m) throw new UsageError(`--${option}: "${value}" is not a size (e.g. 65536, 64k, 16M)`);
  const power = { "": 0, k: 1, m: 2, g: 3 }[m[2].toLowerCase() as "" | "k" | "m" | "g"];
  return Number(m[1]) * 1024 ** power;
}

/** Parses a positive integer. */
export function parseCount(option: string, value: string): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1) {
    throw new UsageError(`--${option}: "${value}" is not a positive whole number`);
  }
  return Number(value);
}

/** Parses a TCP port (0 picks a free one). */
export function parsePort(option: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n > 65535) {
    throw new UsageError(`--${option}: "${value}" is not a port (0–65535)`);
  }
  return n;
}
