/**
 * @module
 * `apprun upgrade`, the whole procedure, in order (docs/design.md, "Upgrades"):
 *
 * 1. prepare NEW: an executable as it is, a handler file built into an artifact; run as
 *    root, NEW must be root's alone (trust.ts) — nothing touched yet;
 * 2. take the upgrade lock (one at a time per service);
 * 3. copy NEW beside BIN (the copy is what is checked and installed, whatever happens to
 *    the file the operator named);
 * 4. check the copy where the service runs (sandbox.ts): `NEW version`, `NEW check`;
 * 5. swap BIN atomically, keeping the old file as BIN.prev and in the history (history.ts);
 * 6. the next version (target.ts `nextVersion`): a warm reload where the unit and the
 *    running version can (the running process serves until NEW has loaded and takes over),
 *    else a restart through the fdstore; the report says which — or, when nothing runs the
 *    service, stop here: its next start runs NEW;
 * 7. the health gate, when there is a health URL;
 * 8. on a failure in 6 or 7: restore the old file and, unless the running version never
 *    stopped serving (a warm reload that NEW did not take over), reload or restart again;
 *    report the rollback and the failed start's last lines (diagnose.ts).
 *
 * Live sessions survive both restarts: each is a handoff through the manager's fdstore, and a
 * NEW that fails at start has not drained the bundle (apprun loads the handler first) or puts
 * it back. Prints one line per step; returns the report with the measured figures.
 */
import { describeError } from "../errors.ts";
import { sha256File } from "./artifact.ts";
import { checkNew, versionOf } from "./check_new.ts";
import { type StartFailureLog, startFailureLog } from "./diagnose.ts";
import { UpgradeError } from "./errors.ts";
import { formatMs } from "./exec.ts";
import { waitHealthy } from "./health.ts";
import { VersionHistory } from "./history.ts";
import { UpgradeLock } from "./lock.ts";
import type { Manifest } from "./manifest.ts";
import { prepareNew } from "./prepare.ts";
import { type ServiceRunner, serviceRunner } from "./sandbox.ts";
import { settle } from "./settle.ts";
import {
  isFile,
  removeLeftovers,
  restorePrevious,
  setPrevious,
  stageBeside,
  swapIn,
} from "./swap.ts";
import { describeNext, nextVersion, RestartFailure, type RestartTarget } from "./target.ts";

/** Options for {@linkcode upgrade}. */
export interface UpgradeOptions {
  manifest: Manifest;
  /** NEW: an executable, or a handler file (built into an artifact). */
  newPath: string;
  target: RestartTarget;
  /** Health URL (overrides the manifest's). */
  health?: string;
  /** Each step's deadline: each restart, the health gate. */
  timeoutMs: number;
  /**
   * The deadline of NEW's check (default 120 s): the first run of an artifact unpacks it
   * (~1 s, more on a busy machine) and compiles its modules.
   */
  checkTimeoutMs?: number;
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

/** What happened. `result` other than "upgraded"/"swapped" means a non-zero exit. */
export interface UpgradeReport {
  name: string;
  /** "swapped": nothing ran the service, so nothing was restarted. */
  result: "upgraded" | "swapped" | "rolled back" | "rollback failed";
  oldVersion: string;
  newVersion: string;
  oldPid: number | null;
  pid: number | null;
  /** How NEW came (warm: a reload; cold: a restart), once it did. */
  path?: "warm" | "cold";
  /** Why NEW was rolled back. */
  failure?: string;
  /** Why the rollback itself failed. */
  rollbackFailure?: string;
  /** The failed start's last lines. */
  failureLog?: StartFailureLog;
  timings: UpgradeTimings;
}

/** Runs the upgrade. Throws `UpgradeError` only before BIN was touched (steps 1–4). */
export async function upgrade(opts: UpgradeOptions): Promise<UpgradeReport> {
  const { manifest, target, timeoutMs, print } = opts;
  const { name, bin } = manifest;
  const health = opts.health ?? manifest.health;
  const t0 = performance.now();
  await using prepared = await prepareNew(opts.newPath, manifest);

  using _lock = UpgradeLock.acquire(bin, name);
  if (!isFile(bin)) throw new UpgradeError(`${bin} (BIN of ${name}) is missing`);
  const leftovers = removeLeftovers(bin);
  if (leftovers.length) print(`removed what an interrupted upgrade left: ${leftovers.join(", ")}`);
  const history = new VersionHistory(bin);
  const oldVersion = await versionOf(bin, timeoutMs);
  const oldSha = await history.shaOf(bin);
  history.store(bin, oldSha);
  if (history.entries().at(-1)?.sha256 !== oldSha) history.remember(oldSha, oldVersion);
  const before = await target.status().catch(() => null);
  const oldPid = before?.pid ?? null;

  print(`copying NEW (${prepared.description}) beside ${bin}`);
  const tCheck = performance.now();
  const staged = await stageBeside(bin, prepared.content);
  let runner: ServiceRunner;
  let checked;
  let newSha: string;
  try {
    runner = await serviceRunner(manifest, target);
    checked = await checkNew(staged, runner, opts.checkTimeoutMs ?? 120_000);
    newSha = await sha256File(staged);
    history.store(staged, newSha);
  } catch (err) {
    await Deno.remove(staged).catch(() => {});
    throw err;
  }
  print(`checked NEW in ${runner.label} in ${formatMs(checked.ms)}: ${checked.version}`);

  const tSwap = performance.now();
  await swapIn(bin, staged);
  const swapMs = performance.now() - tSwap;
  print(`swapped ${bin} in ${formatMs(swapMs)} (the previous one is ${name}.prev)`);

  const report: UpgradeReport = {
    name,
    result: "upgraded",
    oldVersion,
    newVersion: checked.version,
    oldPid,
    pid: null,
    timings: { checkMs: tSwap - tCheck, swapMs, restartMs: 0, healthMs: 0, totalMs: 0 },
  };
  if (target.kind === "none" || before === null || before.state === "stopped") {
    history.remember(newSha, checked.version);
    report.result = "swapped";
    print(`${name} is not running (${target.label}): its next start runs NEW`);
    report.timings.totalMs = performance.now() - t0;
    return report;
  }
  const tRestart = performance.now();
  const since = new Date();
  let badPid: number | null = null;
  try {
    const next = await nextVersion(target, timeoutMs);
    badPid = report.pid = next.pid;
    report.path = next.path;
    report.timings.restartMs = performance.now() - tRestart;
    print(describeNext(next, target, report.timings.restartMs, oldPid));
    if (health) {
      const tHealth = performance.now();
      const h = await waitHealthy(health, timeoutMs).finally(() => {
        report.timings.healthMs = performance.now() - tHealth;
      });
      print(`healthy: ${health} answered ${h.status} in ${formatMs(h.ms)}`);
    }
    history.remember(newSha, checked.version);
  } catch (err) {
    if (report.timings.restartMs === 0) report.timings.restartMs = performance.now() - tRestart;
    if (err instanceof RestartFailure && err.isTimeout) {
      badPid = (await target.status().catch(() => null))?.pid ?? null;
    }
    report.failure = describeError(err);
    const statusText = err instanceof RestartFailure ? err.statusText : undefined;
    print(`NEW failed: ${report.failure}`);
    await rollBack({ ...opts, health, report, badPid, history, oldSha });
    const failed = report.result === "rollback failed" ? bin : `${bin}.failed`;
    // A warm reload that NEW did not take over says why in NEW's own words: no re-run needed.
    const said = /the new version does not load: ([^]*)$/.exec(report.failure)?.[1];
    report.failureLog = said !== undefined
      ? { source: `the reload through ${target.label}`, lines: said.trim().split("\n") }
      : await startFailureLog({
        manifest,
        kind: target.kind,
        runner,
        file: failed,
        since,
        timeoutMs,
        statusText,
      });
    print(`why it failed, from ${report.failureLog.source}:`);
    for (const line of report.failureLog.lines) print(`  | ${line}`);
  }
  report.timings.totalMs = performance.now() - t0;
  return report;
}

/** Step 8: the old file back in place (the history's previous version as BIN.prev), restart. */
async function rollBack(
  o: UpgradeOptions & {
    health: string | undefined;
    report: UpgradeReport;
    badPid: number | null;
    history: VersionHistory;
    oldSha: string;
  },
): Promise<void> {
  const { manifest, target, timeoutMs, print, report } = o;
  const t = performance.now();
  restorePrevious(manifest.bin);
  const before = o.history.previousDistinct(o.oldSha);
  setPrevious(manifest.bin, before && o.history.fileOf(before.sha256));
  print(
    `rolling back: ${manifest.bin} is ${report.oldVersion} again (NEW kept as ${manifest.name}.failed)`,
  );
  // A warm reload that NEW never took over: the old version never stopped serving.
  const now = await target.status().catch(() => null);
  if (
    report.pid === null && now?.state === "ready" && now.pid !== null && now.pid === report.oldPid
  ) {
    report.pid = now.pid;
    report.result = "rolled back";
    report.timings.rollbackMs = performance.now() - t;
    print(
      `rolled back in ${formatMs(report.timings.rollbackMs)}: nothing to restart, pid ` +
        `${now.pid} never stopped serving`,
    );
  } else {
    await settle(target, o.badPid, performance.now() + timeoutMs);
    try {
      const next = await nextVersion(target, timeoutMs);
      report.pid = next.pid;
      report.result = "rolled back";
      report.timings.rollbackMs = performance.now() - t;
      print(`rolled back: ${describeNext(next, target, report.timings.rollbackMs, null)}`);
    } catch (err) {
      report.result = "rollback failed";
      report.rollbackFailure = describeError(err);
      report.timings.rollbackMs = performance.now() - t;
      print(`the rollback's restart failed too: ${report.rollbackFailure}`);
      return;
    }
  }
  if (o.health) {
    try {
      const h = await waitHealthy(o.health, timeoutMs);
      print(`the previous version is healthy: ${o.health} answered ${h.status}`);
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
    case "swapped":
      return `swapped ${r.name}: ${r.oldVersion} → ${r.newVersion} (not running: no restart)`;
    case "rolled back":
      return `rolled back ${r.name}: ${r.newVersion} failed (${r.failure}); ${r.oldVersion} ` +
        `runs again, rollback took ${formatMs(t.rollbackMs ?? 0)} (${figures})`;
    case "rollback failed":
      return `${r.name} is DOWN or degraded: ${r.newVersion} failed (${r.failure}) and the ` +
        `rollback to ${r.oldVersion} failed (${r.rollbackFailure})`;
  }
}
