/**
 * @module
 * `apprun reload [--name NAME | --control PATH]`: reloads a running service without anyone
 * hunting for a pid — the next process takes every connection over. Finds what runs it (a
 * supervisor started by hand, by its control socket; or systemd) and asks for the restart:
 * the supervisor loads the new code in check mode first and refuses, the running worker
 * serving on, when it does not load; systemd restarts the unit. Command glue only: finding
 * the target is runtime/upgrade's `findTarget`; a supervisor is asked for a checked restart.
 */
import {
  findManifest,
  findTarget,
  type RestartTarget,
  type Scope,
  SupervisorTarget,
  UpgradeError,
} from "../runtime/upgrade/mod.ts";
import { supervisorRequest } from "../runtime/supervisor/mod.ts";
import { controlSocketPath } from "../runtime/worker/mod.ts";
import { UsageError } from "./args.ts";
import { locateService, parseServiceArgs, type ServiceArgs } from "./upgrade.ts";

export const RELOAD_USAGE =
  `Usage: apprun reload [--name NAME | --control PATH] [--user] [--timeout T] [--json]

Reloads a running service: the next process takes every connection over (keep-alive, WebSocket
and SSE clients stay connected). Under apprun's supervisor (apprun serve started by hand) the
new code is loaded in check mode first: if it does not load, nothing is restarted, the running
process serves on, and this prints why and exits 1. Under systemd it is
\`systemctl [--user] restart NAME.service\`.

Which service: --control PATH (a supervisor's control socket); else --name NAME (the
supervisor started with that name, or the installed service); else the only supervisor
running, or the only service installed. Exit 0 once the new process is ready.

Options:
  --name NAME      the service (\`apprun serve --name\`, default: the app's file name)
  --control PATH   the supervisor's control socket (as given to apprun serve --control)
  --user           the service is installed with --user (systemctl --user)
  --timeout T      how long the new process may take to be ready (default 60s)
  --json           print the result as one JSON line
`;

/** Runs `reload`. */
export async function reload(args: string[]): Promise<number> {
  const a = parseServiceArgs(args, false);
  if (a.positionals.length) {
    throw new UsageError(`reload takes no arguments (got ${a.positionals[0]}): use --name NAME`);
  }
  const { name, target } = await reloadTarget(a);
  const before = await target.status().then((s) => s.pid, () => null);
  const t0 = performance.now();
  const pid = target instanceof SupervisorTarget
    ? await warmReload(target, a.timeoutMs)
    : (await target.restart(a.timeoutMs)).pid;
  const ms = Math.round(performance.now() - t0);
  if (a.isJson) console.log(JSON.stringify({ name, manager: target.kind, before, pid, ms }));
  else console.log(`reloaded ${name}: pid ${before ?? "?"} → ${pid} in ${ms} ms (${target.label})`);
  return 0;
}

/**
 * A supervisor's reload (warm: the next worker loads while the running one serves on, and a
 * refusal says why). Returns the new pid; throws {@linkcode UpgradeError}.
 */
async function warmReload(target: SupervisorTarget, timeoutMs: number): Promise<number> {
  const reply = await supervisorRequest(target.path, { cmd: "reload" }, timeoutMs)
    .catch((err) => {
      throw new UpgradeError(`${target.label}: ${(err as Error).message}`, { cause: err });
    });
  if (reply.ok && "pid" in reply && typeof reply.pid === "number") return reply.pid;
  const why = reply.ok ? "the reply names no new process" : reply.error;
  throw new UpgradeError(`${target.label}: ${why}`);
}

/** What runs the service the arguments name. */
async function reloadTarget(a: ServiceArgs): Promise<{ name: string; target: RestartTarget }> {
  const { control } = a;
  if (control !== undefined) {
    const name = a.name ?? control.slice(control.lastIndexOf("/") + 1).replace(/\.sock$/, "");
    const target = await findTarget({ name, scope: "system", control, defaultControl: control });
    return { name, target };
  }
  if (a.name !== undefined) {
    const name = a.name;
    // An installed service says its scope; a supervisor started by hand needs none.
    const scope: Scope = a.scope ??
      await findManifest({ name, home: Deno.env.get("HOME") })
        .then((m) => m.manifest.scope, () => "system" as const);
    const defaultControl = controlSocketPath(name);
    return { name, target: await findTarget({ name, scope, defaultControl }) };
  }
  const running = await runningSupervisors();
  if (running.length > 1) {
    throw new UsageError(
      `several supervisors are running (${running.join(", ")}): give --name NAME`,
    );
  }
  if (running.length === 1) return reloadTarget({ ...a, name: running[0] });
  const { manifest, target } = await locateService(a);
  return { name: manifest.name, target };
}

/** The names of the supervisors answering in the default control directory. */
async function runningSupervisors(): Promise<string[]> {
  const probe = controlSocketPath("probe");
  const dir = probe.slice(0, probe.lastIndexOf("/"));
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.name.endsWith(".sock")) continue;
      const reply = await supervisorRequest(`${dir}/${e.name}`, { cmd: "status" }, 2000)
        .catch(() => null);
      if (reply?.ok) names.push(e.name.slice(0, -".sock".length));
    }
  } catch {
    // No control directory: no supervisor runs.
  }
  return names.sort();
}
