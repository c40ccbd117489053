/**
 * @module
 * Step 1 of an upgrade, before anything is touched: NEW must be an executable that runs,
 * reports a version (`NEW version`, exit 0) and loads its handler (`NEW check`, exit 0),
 * each within the timeout. Runs NEW twice; changes nothing.
 */
import { UpgradeError } from "./errors.ts";
import { formatMs, lastLine, runCommand } from "./exec.ts";

/** What NEW's check found. */
export interface NewCheck {
  /** The first line `NEW version` printed. */
  version: string;
  ms: number;
}

/** Runs `path version` and `path check`. Throws {@linkcode UpgradeError} with their output. */
export async function checkNew(path: string, timeoutMs: number): Promise<NewCheck> {
  const t0 = performance.now();
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    throw new UpgradeError(`NEW ${path} does not exist`, { cause: err });
  }
  if (!info.isFile) throw new UpgradeError(`NEW ${path} is not a file`);
  if (((info.mode ?? 0) & 0o111) === 0) throw new UpgradeError(`NEW ${path} is not executable`);
  let version = "";
  for (const cmd of ["version", "check"]) {
    let r;
    try {
      r = await runCommand(path, [cmd], { timeoutMs });
    } catch (err) {
      throw new UpgradeError(`NEW ${path} cannot run`, { cause: err });
    }
    if (r.isTimedOut) {
      throw new UpgradeError(
        `NEW refused: \`${path} ${cmd}\` did not finish in ${formatMs(timeoutMs)}`,
      );
    }
    if (r.code !== 0) {
      throw new UpgradeError(`NEW refused: \`${path} ${cmd}\` exited ${r.code}: ${lastLine(r)}`);
    }
    if (cmd === "version") {
      version = r.stdout.split("\n").map((l) => l.trim()).find(Boolean) ?? "";
      if (!version) throw new UpgradeError(`NEW refused: \`${path} version\` printed nothing`);
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
