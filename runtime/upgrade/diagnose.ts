/**
 * @module
 * Why a version failed to start, in its own words (docs/design.md, "Upgrades"): after a
 * failed upgrade (or rollback) has put the service back, the operator gets the failed
 * process's last log lines, not "see systemctl status". Under systemd they come from the
 * journal (`journalctl -u NAME.service` since the restart). Where there is no journal — a
 * machine without journald, apprun's supervisor (whose workers log to the supervisor's own
 * stderr) — the failed process's last `STATUS=` is its own account (apprun's worker sends its
 * one-line error there before it exits); only without that is the failed file started once more, alone, as the service would run it
 * (sandbox.ts) on a free port of 127.0.0.1, and what it prints until it exits, is ready, or
 * the deadline passes is reported; that it was a re-run is said. Reads only.
 */
import { formatMs, lastLine, runCommand } from "./exec.ts";
import type { Manifest } from "./manifest.ts";
import type { ServiceRunner } from "./sandbox.ts";

/** Lines kept from a failed start. */
const LINES = 12;
const ESC = new RegExp(String.fromCharCode(27) + "\\[[0-9;]*m", "g");

/** Where the lines came from, and the lines. */
export interface StartFailureLog {
  source: string;
  lines: string[];
}

/** Options for {@linkcode startFailureLog}. */
export interface DiagnoseOptions {
  manifest: Manifest;
  kind: "systemd" | "supervisor" | "none";
  runner: ServiceRunner;
  /** The file that failed (kept as BIN.failed after a rollback). */
  file: string;
  /** When the failed start began (the journal is read from there). */
  since: Date;
  /** The failed process's last `STATUS=` (from the manager), if it said one. */
  statusText?: string;
  timeoutMs: number;
}

/** The failed start's last lines. Never throws: at worst, says it found none. */
export async function startFailureLog(opts: DiagnoseOptions): Promise<StartFailureLog> {
  if (opts.kind === "systemd") {
    const journal = await fromJournal(opts).catch(() => []);
    if (journal.length) {
      return { source: `journalctl -u ${opts.manifest.name}.service`, lines: journal };
    }
  }
  if (opts.statusText) {
    return { source: "its own last STATUS= (sd_notify)", lines: [opts.statusText] };
  }
  // Its own deadline, not the upgrade's step timeout: a short --timeout (a health check's) must
  // not cut the re-run off before its first line on a busy machine.
  const limit = 10_000;
  try {
    const r = await opts.runner.run(
      [opts.file, "serve", "--no-supervisor", "--port", "0", "--host", "127.0.0.1"],
      limit,
    );
    const text = `${r.stderr}\n${r.stdout}`.replace(ESC, "");
    const lines = text.split("\n").map((l) => l.trimEnd()).filter(Boolean).slice(-LINES);
    const how = r.ms >= limit ? `still running after ${formatMs(limit)}` : `exit ${r.code}`;
    return {
      source: `a re-run of \`${opts.file} serve\` in ${opts.runner.label} (${how}; no journal)`,
      lines: lines.length ? lines : ["(no output)"],
    };
  } catch (err) {
    return { source: "nowhere", lines: [`(could not re-run it: ${(err as Error).message})`] };
  }
}

async function fromJournal(opts: DiagnoseOptions): Promise<string[]> {
  const args = [
    ...(opts.manifest.scope === "user" ? ["--user"] : []),
    "--no-pager",
    "--quiet",
    "-o",
    "cat",
    "-n",
    String(LINES),
    `--since=@${Math.floor(opts.since.getTime() / 1000)}`,
    "-u",
    `${opts.manifest.name}.service`,
  ];
  const r = await runCommand("journalctl", args, { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(lastLine(r));
  return r.stdout.split("\n").map((l) => l.trimEnd()).filter((l) => l && !l.startsWith("-- "));
}
