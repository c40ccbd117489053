/**
 * @module
 * Runs a command to completion under a deadline and collects its output: how the operator
 * commands call NEW (`NEW version`, `NEW check`) and `systemctl`. Owns the child: on timeout
 * it gets SIGKILL and is reaped before this returns.
 */
import { MANAGER_PROTOCOL_ENV } from "../notify.ts";

/** How a command ended. `code` is null when it was killed for the timeout. */
export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  isTimedOut: boolean;
  ms: number;
}

/** Options for {@linkcode runCommand}. */
export interface RunOptions {
  timeoutMs: number;
  /** Variables to drop from our environment for the child. */
  unsetEnv?: readonly string[];
  env?: Record<string, string>;
}

// The protocol variables of a service manager: a command we run is not the service.
const PROTOCOL_ENV = MANAGER_PROTOCOL_ENV;

/** Runs `cmd args…`, stdin closed. Throws only when it cannot be started at all. */
export async function runCommand(
  cmd: string,
  args: readonly string[],
  opts: RunOptions,
): Promise<RunResult> {
  const env = Deno.env.toObject();
  for (const k of [...PROTOCOL_ENV, ...(opts.unsetEnv ?? [])]) delete env[k];
  const t0 = performance.now();
  const child = new Deno.Command(cmd, {
    args: [...args],
    env: { ...env, ...opts.env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let isTimedOut = false;
  const timer = setTimeout(() => {
    isTimedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, opts.timeoutMs);
  try {
    const out = await child.output();
    const dec = new TextDecoder();
    return {
      code: isTimedOut ? null : out.code,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
      isTimedOut,
      ms: performance.now() - t0,
    };
  } finally {
    clearTimeout(timer);
  }
}

/** The last non-empty line of a command's output (stderr first), for one-line reports. */
export function lastLine(r: RunResult): string {
  const lines = `${r.stdout}\n${r.stderr}`.split("\n").map((l) => l.trim()).filter(Boolean);
  const errs = r.stderr.split("\n").map((l) => l.trim()).filter(Boolean);
  return (errs.length ? errs[errs.length - 1] : lines[lines.length - 1]) ?? "(no output)";
}

/** `1.2 s` / `340 ms`. */
export function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

/** `'…'` for sh: nothing inside single quotes is special but the quote itself. */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}
