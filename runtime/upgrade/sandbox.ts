/**
 * @module
 * Running NEW the way the service will run it, before it is swapped in (docs/design.md,
 * "Upgrades"). Under systemd, `NEW version`, `NEW check` and the diagnosis of a failed start
 * run in a transient unit (`systemd-run --wait --pipe`) with the service's own identity and
 * file-system view, read from `systemctl show NAME.service`: User=/Group=/DynamicUser= (a
 * dynamic user is named after the service, so the check gets the service's uid), the
 * ProtectSystem=/ProtectHome=/PrivateTmp= view with its ReadWritePaths= and
 * BindReadOnlyPaths=, its CacheDirectory= (where an artifact unpacks, so the restart finds
 * NEW unpacked), its environment and UMask=. A NEW that cannot run there fails the check,
 * before anything is swapped; `sudo apprun upgrade` never runs NEW as root outside the
 * sandbox. Without systemd (apprun's supervisor, or nothing running) commands run as the
 * caller. Owns the transient units it starts: each has RuntimeMaxSec= and --collect.
 */
import { formatMs, runCommand, type RunResult } from "./exec.ts";
import type { Manifest } from "./manifest.ts";
import { systemctl } from "./systemd.ts";
import type { RestartTarget } from "./target.ts";

/** Runs commands as the service would. */
export interface ServiceRunner {
  /** "the sandbox of app.service (systemd-run --user)", "this user (no systemd unit)". */
  readonly label: string;
  run(argv: readonly string[], timeoutMs: number): Promise<RunResult>;
}

/** The service settings a transient unit copies, as `systemctl show` names them. */
const COPIED = [
  "User",
  "Group",
  "DynamicUser",
  "SupplementaryGroups",
  "CacheDirectory",
  "RuntimeDirectory",
  "StateDirectory",
  "Environment",
  "EnvironmentFiles",
  "ProtectSystem",
  "ProtectHome",
  "PrivateTmp",
  "PrivateUsers",
  "NoNewPrivileges",
  "ReadWritePaths",
  "ReadOnlyPaths",
  "InaccessiblePaths",
  "BindPaths",
  "BindReadOnlyPaths",
  "UMask",
];

/** How `manifest`'s service runs commands, given what restarts it. */
export async function serviceRunner(
  manifest: Manifest,
  target: RestartTarget,
): Promise<ServiceRunner> {
  if (target.kind !== "systemd") return directRunner(`this user (${target.label})`);
  const unit = `${manifest.name}.service`;
  const r = await systemctl(manifest.scope, ["show", `--property=${COPIED.join(",")}`, unit]);
  if (r.code !== 0) return directRunner(`this user (systemctl show ${unit} failed)`);
  const props = transientProperties(r.stdout, manifest.name);
  const scopeArgs = manifest.scope === "user" ? ["--user"] : [];
  return {
    label: `the sandbox of ${unit} (systemd-run${manifest.scope === "user" ? " --user" : ""})`,
    run: (argv, timeoutMs) =>
      runCommand("systemd-run", [
        ...scopeArgs,
        "--wait",
        "--pipe",
        "--quiet",
        "--collect",
        `--description=apprun: ${argv.join(" ").slice(0, 200)}`,
        `--property=RuntimeMaxSec=${Math.max(1, Math.ceil(timeoutMs / 1000))}`,
        ...props.map((p) => `--property=${p}`),
        "--",
        ...argv,
      ], { timeoutMs: timeoutMs + 5000 }),
  };
}

/** Runs commands directly, as the caller. */
export function directRunner(label: string): ServiceRunner {
  return {
    label,
    run: (argv, timeoutMs) => runCommand(argv[0], argv.slice(1), { timeoutMs }),
  };
}

/**
 * `systemctl show` lines → `--property=` values for systemd-run. Empty values are dropped;
 * list settings may come on several lines; EnvironmentFiles= is shown as
 * `PATH (ignore_errors=yes)` and set as `EnvironmentFile=-PATH`. A dynamic user without a
 * User= is named after the service's unit (systemd.exec(5)); the transient unit has another
 * name, so it gets `User=NAME` to be that same user (dynamic users are shared by name).
 */
export function transientProperties(show: string, name: string): string[] {
  const out: string[] = [];
  const values = new Map(
    show.split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
  if (values.get("DynamicUser") === "yes" && !values.get("User")) out.push(`User=${name}`);
  for (const line of show.split("\n")) {
    const i = line.indexOf("=");
    if (i <= 0) continue;
    const key = line.slice(0, i);
    const value = line.slice(i + 1);
    if (!COPIED.includes(key) || value === "") continue;
    if (key === "EnvironmentFiles") {
      const m = /^(.*) \(ignore_errors=(yes|no)\)$/.exec(value);
      if (m) out.push(`EnvironmentFile=${m[2] === "yes" ? "-" : ""}${m[1]}`);
      continue;
    }
    // Defaults need not be repeated (and "no" for DynamicUser= would still want a User=).
    if (key === "DynamicUser" && value === "no") continue;
    out.push(`${key}=${value}`);
  }
  return out;
}

/** How a command run by a runner ended, for a one-line report. */
export function describeRun(r: RunResult, timeoutMs: number): string {
  // Under systemd-run, RuntimeMaxSec= ends it first: the run lasted the whole timeout.
  if (r.isTimedOut || r.ms >= timeoutMs) return `did not finish in ${formatMs(timeoutMs)}`;
  return `exited ${r.code}`;
}
