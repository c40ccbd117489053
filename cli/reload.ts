/**
 * @module
 * `apprun reload [--name NAME | --control PATH]`: reloads a running service without anyone
 * hunting for a pid — the next process takes every connection over. Finds what runs it (a
 * supervisor started by hand, by its control socket; or systemd) and asks for a warm reload
 * (docs/design.md, "Warm reload"): the next process loads while the running one serves on,
 * and when it does not load nothing was stopped and this says why; a unit installed before
 * warm reloads is restarted instead (said so). Command glue only: finding the target is
 * runtime/upgrade's `findTarget`, the path `nextVersion`.
 */
import {
  findManifest,
  findTarget,
  nextVersion,
  type RestartTarget,
  type Scope,
} from "../runtime/upgrade/mod.ts";
import { supervisorRequest } from "../runtime/supervisor/mod.ts";
import { controlSocketPath } from "../runtime/worker/mod.ts";
import { UsageError } from "../runtime/args.ts";
import { locateService, parseServiceArgs, type ServiceArgs } from "./upgrade.ts";

export const RELOAD_USAGE =
  `Usage: apprun reload [--name NAME | --control PATH] [--user] [--timeout T] [--json]

Reloads a running service, warm: the next process loads the new code while the running one
serves on, then takes every connection over directly (keep-alive, WebSocket and SSE clients stay
connected). If the new code does not load, nothing was stopped: the running process serves on,
and this prints why and exits 1. Under systemd it is \`systemctl [--user] reload NAME.service\`
(a unit installed before warm reloads has no ExecReload=: then \`restart\`, said so).

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
  const next = await nextVersion(target, a.timeoutMs);
  const ms = Math.round(performance.now() - t0);
  const { pid, path } = next;
  if (a.isJson) console.log(JSON.stringify({ name, manager: target.kind, before, pid, ms, path }));
  else {
    const how = path === "warm" ? "" : `, cold: ${next.whyCold}`;
    console.log(
      `reloaded ${name}: pid ${before ?? "?"} → ${pid} in ${ms} ms (${target.label}${how})`,
    );
  }
  return 0;
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
