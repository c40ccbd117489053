/**
 * @module
 * `apprun rollback`: the swap back by hand. Under the upgrade lock, BIN and BIN.prev trade
 * files (both stay complete throughout), then the service restarts through the fdstore. If
 * that restart fails, they trade back and the service restarts again on what it ran before.
 * Running it twice returns to where it started.
 */
import { describeError } from "../errors.ts";
import { versionOf } from "./check_new.ts";
import { UpgradeError } from "./errors.ts";
import { formatMs } from "./exec.ts";
import { UpgradeLock } from "./lock.ts";
import type { Manifest } from "./manifest.ts";
import { settle } from "./settle.ts";
import { exchangeWithPrevious, isFile, removeLeftovers } from "./swap.ts";
import { RestartFailure, type RestartTarget } from "./target.ts";

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
  result: "rolled back" | "failed, restored";
  from: string;
  to: string;
  pid: number | null;
  failure?: string;
  swapMs: number;
  restartMs: number;
  totalMs: number;
}

/** Swaps BIN.prev in and restarts. Throws `UpgradeError` before touching anything. */
export async function rollback(opts: RollbackOptions): Promise<RollbackReport> {
  const { manifest, target, timeoutMs, print } = opts;
  const { name, bin } = manifest;
  const t0 = performance.now();
  using _lock = UpgradeLock.acquire(bin, name);
  removeLeftovers(bin);
  if (!isFile(`${bin}.prev`)) {
    throw new UpgradeError(
      `${bin}.prev does not exist: ${name} has no previous version to go back to`,
    );
  }
  const [from, to] = await Promise.all([
    versionOf(bin, timeoutMs),
    versionOf(`${bin}.prev`, timeoutMs),
  ]);
  const tSwap = performance.now();
  exchangeWithPrevious(bin);
  const swapMs = performance.now() - tSwap;
  print(`swapped ${bin} and ${name}.prev in ${formatMs(swapMs)}: ${to} is now BIN`);
  const tRestart = performance.now();
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
  try {
    report.pid = (await target.restart(timeoutMs)).pid;
    report.restartMs = performance.now() - tRestart;
    print(
      `restarted through ${target.label} in ${
        formatMs(report.restartMs)
      }: pid ${report.pid}, ready`,
    );
  } catch (err) {
    report.restartMs = performance.now() - tRestart;
    report.result = "failed, restored";
    report.failure = describeError(err);
    print(`the restart failed: ${report.failure}; swapping back`);
    const badPid = err instanceof RestartFailure && err.isTimeout
      ? (await target.status().catch(() => null))?.pid ?? null
      : null;
    exchangeWithPrevious(bin);
    await settle(target, badPid, performance.now() + timeoutMs);
    report.pid = (await target.restart(timeoutMs)).pid;
    print(`${from} runs again: pid ${report.pid}`);
  }
  report.totalMs = performance.now() - t0;
  return report;
}
