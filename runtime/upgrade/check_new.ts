/**
 * @module
 * Step 2 of an upgrade, before anything is swapped: NEW — the copy staged beside BIN, not the
 * file the operator named, which could change after the check — must run where the service
 * runs it (sandbox.ts), report a version (`NEW version`, exit 0) and load its handler
 * (`NEW check`, exit 0), each within the timeout. Changes nothing but what NEW writes in the
 * service's cache (an artifact unpacks there).
 */
import { UpgradeError } from "./errors.ts";
import { lastLine, runCommand } from "./exec.ts";
import { describeRun, type ServiceRunner } from "./sandbox.ts";

/** What NEW's check found. */
export interface NewCheck {
  /** The first line `NEW version` printed. */
  version: string;
  ms: number;
}

/** Runs `path version` and `path check` with `runner`. Throws {@linkcode UpgradeError}. */
export async function checkNew(
  path: string,
  runner: ServiceRunner,
  timeoutMs: number,
): Promise<NewCheck> {
  const t0 = performance.now();
  let version = "";
  for (const cmd of ["version", "check"]) {
    let r;
    try {
      r = await runner.run([path, cmd], timeoutMs);
    } catch (err) {
      throw new UpgradeError(`NEW cannot run: ${(err as Error).message}`, { cause: err });
    }
    if (r.code !== 0 || r.isTimedOut) {
      throw new UpgradeError(
        `NEW refused: \`NEW ${cmd}\` ${describeRun(r, timeoutMs)} in ${runner.label}: ${
          lastLine(r)
        }`,
      );
    }
    if (cmd === "version") {
      version = r.stdout.split("\n").map((l) => l.trim()).find(Boolean) ?? "";
      if (!version) throw new UpgradeError("NEW refused: `NEW version` printed nothing");
    }
  }
  return { version, ms: performance.now() - t0 };
}

/** `BIN version`, for the report; "unknown (…)" when it cannot tell. Never throws. */
export async function versionOf(path: string, timeoutMs: number): Promise<string> {
  try {
    const r = await runCommand(path, ["version"], { timeoutMs });
    const line = r.stdout.split("\n").map((l) => l.trim()).find(Boolean);
    if (r.code === 0 && line) return line;
    return `unknown (${r.isTimedOut ? "timed out" : lastLine(r)})`;
  } catch (err) {
    return `unknown (${(err as Error).message})`;
  }
}
