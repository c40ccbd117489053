/**
 * @module
 * `apprun upgrade`, the whole procedure, in order:
 *
 * 1. check NEW (it runs, reports a version, loads its handler) — nothing touched yet;
 * 2. take the upgrade lock (one at a time per service);
 * 3. swap BIN atomically, keeping the old file as BIN.prev (swap.ts);
 * 4. restart through the fdstore (systemd or the supervisor, target.ts): READY=1 in time;
 * 5. the health gate, when there is a health URL;
 * 6. on a failure in 4 or 5: restore BIN.prev, restart again, report the rollback.
 *
 * Live sessions survive both restarts: each is a handoff through the manager's fdstore, and a
 * NEW that fails at start has not drained the bundle (apprun loads the handler first) or puts
 * it back. Prints one line per step; returns the report with the measured figures.
 */
import { describeError } from "../errors.ts";
import { UpgradeError } from "./errors.ts";
import { checkNew, versionOf } from "./check_new.ts";
import { formatMs } from "./exec.ts";
import { waitHealthy } from "./health.ts";
import { UpgradeLock } from "./lock.ts";
import type { Manifest } from "./manifest.ts";
import { prepareNew } from "./prepare.ts";
import { settle } from "./settle.ts";
import {
  isFile,
  pauseForTest,
  removeLeftovers,
  restorePrevious,
  stageBeside,
  swapIn,
} from "./swap.ts";
import { RestartFailure, type RestartTarget } from "./target.ts";

/** Options for {@linkcode upgrade}. */
export interface UpgradeOptions {
  manifest: Manifest;
  /** NEW: an executable, or a handler file (a launcher is generated for it). */
  newPath: string;
  target: RestartTarget;
  /** Health URL (overrides the manifest's). */
  health?: string;
  /** Each step's deadline: NEW's check, each restart, the health gate. */
  timeoutMs: number;
  print(line: string): void;
}

/** Measured durations, ms. */
export interface UpgradeTimings {
  checkMs: number;
  swapMs: number;
  restartMs: number;
  healthMs: number;
  totalMs: number;
  /** From the failure to the old version ready again. */
  rollbackMs?: number;
}

/** What happened. `result` other than "upgraded" means a non-zero exit. */
export interface UpgradeReport {
  name: string;
  result: "upgraded" | "rolled back" | "rollback failed";
  oldVersion: string;
  newVersion: string;
  oldPid: number | null;
  pid: number | null;
  /** Why NEW was rolled back. */
  failure?: string;
  /** Why the rollback itself failed. */
  rollbackFailure?: string;
  timings: UpgradeTimings;
}

/** Runs the upgrade. Throws `UpgradeError` only before BIN was touched (steps 1–2). */
export async function upgrade(opts: UpgradeOptions): Promise<UpgradeReport> {
  const { manifest, target, timeoutMs, print } = opts;
  const { name, bin } = manifest;
  const health = opts.health ?? manifest.health;
  const t0 = performance.now();
  await using prepared = await prepareNew(opts.newPath, manifest);
  const checked = await checkNew(prepared.path, timeoutMs);
  print(`checked NEW (${prepared.description}) in ${formatMs(checked.ms)}: ${checked.version}`);

  using _lock = UpgradeLock.acquire(bin, name);
  if (!isFile(bin)) throw new UpgradeError(`${bin} (BIN of ${name}) is missing`);
  const leftovers = removeLeftovers(bin);
  if (leftovers.length) print(`removed what an interrupted upgrade left: ${leftovers.join(", ")}`);
  const oldVersion = await versionOf(bin, timeoutMs);
  const oldPid = (await target.status().catch(() => null))?.pid ?? null;

  const tSwap = performance.now();
  const temp = await stageBeside(bin, prepared.content);
  await swapIn(bin, temp);
  const swapMs = performance.now() - tSwap;
  print(`swapped ${bin} in ${formatMs(swapMs)} (the previous one is ${name}.prev)`);
  await pauseForTest("swapped");

  const report: UpgradeReport = {
    name,
    result: "upgraded",
    oldVersion,
    newVersion: checked.version,
    oldPid,
    pid: null,
    timings: { checkMs: checked.ms, swapMs, restartMs: 0, healthMs: 0, totalMs: 0 },
  };
  const tRestart = performance.now();
  let badPid: number | null = null;
  try {
    const { pid } = await target.restart(timeoutMs);
    badPid = report.pid = pid;
    report.timings.restartMs = performance.now() - tRestart;
    print(
      `restarted through ${target.label} in ${formatMs(report.timings.restartMs)}: ` +
        `pid ${oldPid ?? "-"} → ${pid}, ready`,
    );
    if (health) {
      const tHealth = performance.now();
      const h = await waitHealthy(health, timeoutMs).finally(() => {
        report.timings.healthMs = performance.now() - tHealth;
      });
      print(`healthy: ${health} answered ${h.status} in ${formatMs(h.ms)}`);
    }
  } catch (err) {
    if (report.timings.restartMs === 0) report.timings.restartMs = performance.now() - tRestart;
    if (err instanceof RestartFailure && err.isTimeout) {
      badPid = (await target.status().catch(() => null))?.pid ?? null;
    }
    report.failure = describeError(err);
    print(`NEW failed: ${report.failure}`);
    await rollBack(opts, report, badPid, health);
  }
  report.timings.totalMs = performance.now() - t0;
  return report;
}

/** Step 6: BIN.prev back in place, restart, report. */
async function rollBack(
  opts: UpgradeOptions,
  report: UpgradeReport,
  badPid: number | null,
  health: string | undefined,
): Promise<void> {
  const { manifest, target, timeoutMs, print } = opts;
  const t = performance.now();
  restorePrevious(manifest.bin);
  print(
    `rolling back: ${manifest.name}.prev restored as ${manifest.bin} (NEW kept as ${manifest.name}.failed)`,
  );
  await settle(target, badPid, performance.now() + timeoutMs);
  try {
    const { pid } = await target.restart(timeoutMs);
    report.pid = pid;
    report.result = "rolled back";
    report.timings.rollbackMs = performance.now() - t;
    print(
      `rolled back through ${target.label} in ${
        formatMs(report.timings.rollbackMs)
      }: pid ${pid}, ready`,
    );
  } catch (err) {
    report.result = "rollback failed";
    report.rollbackFailure = describeError(err);
    report.timings.rollbackMs = performance.now() - t;
    print(`the rollback's restart failed too: ${report.rollbackFailure}`);
    return;
  }
  if (health) {
    try {
      const h = await waitHealthy(health, timeoutMs);
      print(`the previous version is healthy: ${health} answered ${h.status}`);
    } catch (err) {
      print(`the previous version is not healthy either: ${describeError(err)}`);
    }
  }
}

/** The closing line of the report. */
export function summarize(r: UpgradeReport): string {
  const t = r.timings;
  const figures = `check ${formatMs(t.checkMs)}, swap ${formatMs(t.swapMs)}, restart ` +
    `${formatMs(t.restartMs)}${t.healthMs ? `, health ${formatMs(t.healthMs)}` : ""}`;
  switch (r.result) {
    case "upgraded":
      return `upgraded ${r.name}: ${r.oldVersion} → ${r.newVersion} in ${
        formatMs(t.totalMs)
      } (${figures})`;
    case "rolled back":
      return `rolled back ${r.name}: ${r.newVersion} failed (${r.failure}); ${r.oldVersion} ` +
        `runs again, rollback took ${formatMs(t.rollbackMs ?? 0)} (${figures})`;
    case "rollback failed":
      return `${r.name} is DOWN or degraded: ${r.newVersion} failed (${r.failure}) and the ` +
        `rollback to ${r.oldVersion} failed (${r.rollbackFailure})`;
  }
}
