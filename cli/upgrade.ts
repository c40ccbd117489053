/**
 * @module
 * `apprun upgrade NEW` and `apprun rollback`: argument parsing, finding the installed service
 * (its manifest) and what runs it (systemd or the supervisor's control socket), and printing
 * the report. The procedure itself is runtime/upgrade.
 */
import {
  absolutePath,
  buildInfo,
  findManifest,
  findTarget,
  libDirs,
  type Manifest,
  type RestartTarget,
  rollback,
  type Scope,
  summarize,
  upgrade,
} from "../runtime/upgrade/mod.ts";
import { parseCommandLine, parseDuration, UsageError } from "../runtime/args.ts";
import { controlSocketPath } from "../runtime/worker/mod.ts";

export const UPGRADE_USAGE = `Usage: apprun upgrade NEW [--name NAME] [options]

Upgrades the installed service NAME to NEW (an executable such as an apprun compile
output, or a handler file, which is built into an artifact as with apprun install):
  1. copies NEW beside the installed binary (run as root: NEW must be root's alone);
  2. checks the copy where the service runs it (under systemd: in a transient unit with
     the service's user, file-system view and cache): \`NEW version\` and \`NEW check\`
     must exit 0 — nothing is swapped before;
  3. takes the upgrade lock (one upgrade of NAME at a time), swaps the installed binary
     atomically, keeping the previous one as NAME.prev and in a history of 5 versions;
  4. restarts through the fdstore (systemctl restart, or apprun's supervisor) and waits for
     READY=1 (not running: stops here, its next start runs NEW); 5. waits for a 2xx from the
     health URL, if there is one;
  6. if NEW crashes, never becomes ready or fails health: puts the previous version back,
     restarts again, prints why NEW failed (its last log lines) and exits 1. Live
     connections survive every step.

Options:
  --name NAME        the installed service (default: the only one installed)
  --user             the service is installed with --user (systemctl --user)
  --health URL       GET it after the restart: a 2xx must come (default: from install)
  --timeout T        limit for each restart and for the health gate (default 60s)
  --check-timeout T  limit for each of NEW's checks (default 120s: an artifact's first run
                     unpacks it)
  --control PATH     the supervisor's control socket (default $XDG_RUNTIME_DIR/apprun/NAME.sock)
  --json             print the report as one JSON line at the end
`;

export const ROLLBACK_USAGE = `Usage: apprun rollback [--name NAME] [options]

Goes back to the last version NAME ran that differs from the running one (also after an
automatic rollback) and restarts through the fdstore; says which version it moved from and
to. Running it twice returns. If the restart fails, goes forward again and restarts.
apprun status lists the versions.

Options: --name NAME, --user, --timeout T, --control PATH, --json (as apprun upgrade)
`;

/** The options upgrade, rollback and status share. */
export interface ServiceArgs {
  name?: string;
  scope?: Scope;
  control?: string;
  timeoutMs: number;
  checkTimeoutMs?: number;
  health?: string;
  isJson: boolean;
  positionals: string[];
}

/** Parses the shared options (plus `--health` when `hasHealth`). Throws {@linkcode UsageError}. */
export function parseServiceArgs(args: string[], hasHealth: boolean): ServiceArgs {
  const parsed = parseCommandLine({
    args,
    allowPositionals: true,
    options: {
      name: { type: "string" },
      user: { type: "boolean" },
      control: { type: "string" },
      timeout: { type: "string" },
      json: { type: "boolean" },
      ...(hasHealth
        ? { health: { type: "string" as const }, "check-timeout": { type: "string" as const } }
        : {}),
    },
  });
  const v = parsed.values as Record<string, string | boolean | undefined>;
  const name = v.name as string | undefined;
  if (name !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$/.test(name)) {
    throw new UsageError(`--name: "${name}" is not a service name (letters, digits, "_.:-")`);
  }
  const control = v.control as string | undefined;
  if (control !== undefined && control === "") throw new UsageError("--control: empty path");
  const health = v.health as string | undefined;
  if (health !== undefined) checkHealthUrl(health);
  return {
    name,
    scope: v.user ? "user" : undefined,
    control: control === undefined ? undefined : absolutePath(control),
    timeoutMs: v.timeout ? parseDuration("timeout", v.timeout as string) : 60_000,
    checkTimeoutMs: v["check-timeout"]
      ? parseDuration("check-timeout", v["check-timeout"] as string)
      : undefined,
    health,
    isJson: v.json === true,
    positionals: parsed.positionals,
  };
}

/** An http(s) URL, or a {@linkcode UsageError} naming `--health`. */
export function checkHealthUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`--health: "${url}" is not a URL`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new UsageError(`--health: "${url}" is not an http(s) URL`);
  }
}

/** The service the command is about: its manifest and what restarts it. */
export async function locateService(
  a: ServiceArgs,
): Promise<{ manifest: Manifest; target: RestartTarget }> {
  const home = Deno.env.get("HOME");
  const name = a.name ?? buildInfo()?.name ?? await onlyInstalled(a.scope, home);
  const { manifest } = await findManifest({ name, scope: a.scope, home });
  const target = await findTarget({
    name,
    scope: manifest.scope,
    control: a.control,
    defaultControl: controlSocketPath(name),
  });
  return { manifest, target };
}

/** With no --name: the one service installed (system, then user), else a usage error. */
async function onlyInstalled(scope: Scope | undefined, home: string | undefined) {
  const dirs = [
    ...(scope !== "user" ? libDirs("system") : []),
    ...(scope !== "system" ? libDirs("user", home) : []),
  ];
  const names: string[] = [];
  for (const dir of dirs) {
    try {
      for await (const e of Deno.readDir(dir)) {
        try {
          await Deno.stat(`${dir}/${e.name}/apprun.json`);
          names.push(e.name);
        } catch {
          // not an install
        }
      }
    } catch {
      // no such dir
    }
  }
  if (names.length === 1) return names[0];
  throw new UsageError(
    names.length === 0
      ? "no installed service found: give --name NAME (and --user for a user install)"
      : `several services are installed (${names.join(", ")}): give --name NAME`,
  );
}

const print = (line: string) => console.log(line);

/** Runs `upgrade`. Exit 0 when upgraded, 1 when rolled back or worse. */
export async function upgradeCommand(args: string[]): Promise<number> {
  const a = parseServiceArgs(args, true);
  if (a.positionals.length !== 1) {
    throw new UsageError(
      a.positionals.length === 0
        ? "upgrade needs NEW (a binary or a handler file)"
        : `upgrade takes one NEW, got ${a.positionals.length}`,
    );
  }
  const { manifest, target } = await locateService(a);
  const report = await upgrade({
    manifest,
    newPath: a.positionals[0],
    target,
    health: a.health,
    timeoutMs: a.timeoutMs,
    checkTimeoutMs: a.checkTimeoutMs,
    print,
  });
  print(summarize(report));
  if (a.isJson) print(JSON.stringify(report));
  return report.result === "upgraded" || report.result === "swapped" ? 0 : 1;
}

/** Runs `rollback`. */
export async function rollbackCommand(args: string[]): Promise<number> {
  const a = parseServiceArgs(args, false);
  if (a.positionals.length) throw new UsageError(`rollback takes no NEW (got ${a.positionals[0]})`);
  const { manifest, target } = await locateService(a);
  const report = await rollback({ manifest, target, timeoutMs: a.timeoutMs, print });
  print(
    report.result === "failed, restored"
      ? `rollback of ${report.name} failed (${report.failure}); ${report.from} runs again`
      : `rolled back ${report.name} from ${report.from} to ${report.to} (swap ${
        report.swapMs.toFixed(1)
      } ms, restart ${Math.round(report.restartMs)} ms)`,
  );
  if (a.isJson) print(JSON.stringify(report));
  return report.result === "failed, restored" ? 1 : 0;
}
