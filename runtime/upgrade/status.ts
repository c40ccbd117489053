/**
 * @module
 * `apprun status`: the service's state as its manager sees it — the supervisor's status
 * reply, or `systemctl show` (MainPID, ActiveState, StatusText, NFileDescriptorStore) —
 * plus what the manifest says was installed. Text only; reads, never changes.
 */
import type { Manifest } from "./manifest.ts";
import type { RestartTarget, TargetStatus } from "./target.ts";

/** The status as printable lines; the first one is the verdict. */
export function statusLines(
  name: string,
  target: RestartTarget,
  s: TargetStatus,
  manifest: Manifest | null,
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
  return lines;
}
