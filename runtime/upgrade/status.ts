/**
 * @module
 * `apprun status`: the service's state as its manager sees it — the supervisor's status
 * reply, or `systemctl show` (MainPID, ActiveState, StatusText, NFileDescriptorStore) —
 * plus what the manifest says was installed and the versions it ran (history.ts), newest
 * first, the one that `apprun rollback` would go to marked. Text only; reads, never changes.
 */
import type { HistoryEntry } from "./history.ts";
import type { Manifest } from "./manifest.ts";
import type { RestartTarget, TargetStatus } from "./target.ts";

/** The installed versions: the history and which one BIN is. */
export interface InstalledVersions {
  entries: HistoryEntry[];
  current: string;
  /** Where `apprun rollback` goes, if anywhere. */
  rollbackTo: string | null;
}

/** The status as printable lines; the first one is the verdict. */
export function statusLines(
  name: string,
  target: RestartTarget,
  s: TargetStatus,
  manifest: Manifest | null,
  versions: InstalledVersions | null = null,
): string[] {
  const lines = [`${name}: ${s.state} under ${target.label}`];
  lines.push(`  pid: ${s.pid ?? "-"}`);
  for (const [k, v] of s.details) {
    if (k !== "state" || target.kind === "systemd") lines.push(`  ${k}: ${v}`);
  }
  lines.push(`  status: ${s.text || "-"}`);
  if (manifest !== null) {
    lines.push(`  binary: ${manifest.bin} (${manifest.kind} from ${manifest.source})`);
    if (manifest.health) lines.push(`  health: ${manifest.health}`);
  }
  if (versions !== null && versions.entries.length) {
    lines.push("  versions (newest first):");
    for (const e of [...versions.entries].reverse()) {
      const mark = e.sha256 === versions.current
        ? "running"
        : e.sha256 === versions.rollbackTo
        ? "rollback goes here"
        : "";
      lines.push(`    ${e.at}  ${e.version}${mark ? `  (${mark})` : ""}`);
    }
  }
  return lines;
}
