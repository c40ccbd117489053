/**
 * @module
 * `apprun rollback`: back to the last version in the history (history.ts) that differs from
 * the running one — after an automatic rollback too, where BIN and the file kept before it
 * are the same. Under the upgrade lock, BIN becomes that version and BIN.prev the one that
 * ran (both stay complete throughout), then the service reloads (warm) or restarts through
 * the fdstore (target.ts `nextVersion`). If that fails, both go back and the service comes
 * back on what it ran before. Running it twice returns to where it started.
 */
import { describeError } from "../errors.ts";
import { versionOf } from "./check_new.ts";
import { UpgradeError } from "./errors.ts";
import { formatMs } from "./exec.ts";
import { VersionHistory } from "./history.ts";
import { UpgradeLock } from "./lock.ts";
import type { Manifest } from "./manifest.ts";
import { settle } from "./settle.ts";
import { isFile, placeVersions, removeLeftovers } from "./swap.ts";
import { describeNext, nextVersion, RestartFailure, type RestartTarget } from "./target.ts";

/** Options for {@linkcode rollback}. */
export interface RollbackOptions {
  manifest: Manifest;
  target: RestartTarget;
  timeoutMs: number;
  print(line: string): void;
}

/** What the rollback did. */
export interface RollbackReport {
  name: string;
  result: "rolled back" | "swapped" | "failed, restored";
  from: string;
  to: string;
  pid: number | null;
  failure?: string;
  swapMs: number;
  restartMs: number;
  totalMs: number;
}

/** Swaps the previous distinct version in and restarts. Throws `UpgradeError` before touching anything. */
export async function rollback(opts: RollbackOptions): Promise<RollbackReport> {
  const { manifest, target, timeoutMs, print } = opts;
  const { name, bin } = manifest;
  const t0 = performance.now();
  using _lock = UpgradeLock.acquire(bin, name);
  removeLeftovers(bin);
  if (!isFile(bin)) throw new UpgradeError(`${bin} (BIN of ${name}) is missing`);
  const history = new VersionHistory(bin);
  const currentSha = await history.shaOf(bin);
  const from = await versionOf(bin, timeoutMs);
  history.store(bin, currentSha);
  const previous = history.previousDistinct(currentSha);
  if (previous === null) {
    throw new UpgradeError(
      `${name} has no previous version to go back to: its history holds only ${from}`,
    );
  }
  const to = previous.version;
  const current = history.fileOf(currentSha);
  const tSwap = performance.now();
  placeVersions(bin, history.fileOf(previous.sha256), current);
  const swapMs = performance.now() - tSwap;
  print(`swapped in ${to} as ${bin} in ${formatMs(swapMs)} (${from} is ${name}.prev)`);
  const report: RollbackReport = {
    name,
    result: "rolled back",
    from,
    to,
    pid: null,
    swapMs,
    restartMs: 0,
    totalMs: 0,
  };
  const before = await target.status().catch(() => null);
  if (target.kind === "none" || before === null || before.state === "stopped") {
    history.remember(previous.sha256, previous.version);
    report.result = "swapped";
    print(`${name} is not running (${target.label}): its next start runs ${to}`);
    report.totalMs = performance.now() - t0;
    return report;
  }
  const tRestart = performance.now();
  try {
    const next = await nextVersion(target, timeoutMs);
    report.pid = next.pid;
    report.restartMs = performance.now() - tRestart;
    history.remember(previous.sha256, previous.version);
    print(describeNext(next, target, report.restartMs, before.pid));
  } catch (err) {
    report.restartMs = performance.now() - tRestart;
    report.result = "failed, restored";
    report.failure = describeError(err);
    print(`the restart failed: ${report.failure}; going back to ${from}`);
    const badPid = err instanceof RestartFailure && err.isTimeout
      ? (await target.status().catch(() => null))?.pid ?? null
      : null;
    placeVersions(bin, current, history.fileOf(previous.sha256));
    const now = await target.status().catch(() => null);
    if (now?.state === "ready" && now.pid !== null && now.pid === before.pid) {
      report.pid = now.pid; // a warm reload that was not taken over: it never stopped
    } else {
      await settle(target, badPid, performance.now() + timeoutMs);
      report.pid = (await nextVersion(target, timeoutMs)).pid;
    }
    print(`${from} runs again: pid ${report.pid}`);
  }
  report.totalMs = performance.now() - t0;
  return report;
}
