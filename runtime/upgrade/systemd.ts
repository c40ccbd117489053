/**
 * @module
 * The few `systemctl` calls the operator commands make, for the system manager or the
 * calling user's (`--user`): is it running, daemon-reload, enable --now, show, restart.
 * Every call has a deadline; none throws on a non-zero exit (callers read the result).
 */
import { runCommand, type RunResult } from "./exec.ts";
import type { Scope } from "./layout.ts";

/** `systemctl` or `systemctl --user`, as words. */
export function systemctlWords(scope: Scope): string[] {
  return scope === "user" ? ["systemctl", "--user"] : ["systemctl"];
}

/** Runs `systemctl [--user] args…` (no pager, no colour). */
export function systemctl(
  scope: Scope,
  args: readonly string[],
  timeoutMs = 30_000,
): Promise<RunResult> {
  const [cmd, ...pre] = systemctlWords(scope);
  return runCommand(cmd, [...pre, ...args], {
    timeoutMs,
    env: { SYSTEMD_PAGER: "", SYSTEMD_COLORS: "0" },
  });
}

/**
 * Whether a service manager of `scope` runs here: for the system, `/run/systemd/system`
 * exists (sd_booted(3)); for the user, `systemctl --user` answers.
 */
export async function isSystemdRunning(scope: Scope): Promise<boolean> {
  if (scope === "system") {
    try {
      return Deno.statSync("/run/systemd/system").isDirectory;
    } catch {
      return false;
    }
  }
  try {
    const r = await systemctl("user", ["show", "-p", "SystemState", "--value"], 5000);
    return r.code === 0 && r.stdout.trim() !== "";
  } catch {
    return false; // no systemctl at all
  }
}

/** `systemctl show -p A,B unit` as a record; missing properties are "". */
export async function showUnit(
  scope: Scope,
  unit: string,
  props: readonly string[],
): Promise<Record<string, string>> {
  const r = await systemctl(scope, ["show", `--property=${props.join(",")}`, unit], 10_000);
  const out: Record<string, string> = Object.fromEntries(props.map((p) => [p, ""]));
  if (r.code !== 0) return out;
  for (const line of r.stdout.split("\n")) {
    const i = line.indexOf("=");
    if (i > 0 && line.slice(0, i) in out) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}
