/**
 * @module
 * `apprun serve` without a service manager: opens the listeners, then runs the embedded
 * supervisor (runtime/supervisor) with this same apprun as its worker (`serve
 * --no-supervisor`), so handoff, SIGHUP reloads and `--watch` work on a laptop or in CI exactly
 * as under systemd. Command glue only: builds the supervisor's options from the command line.
 */
import { type Listener, openListeners } from "../runtime/listen.ts";
import type { Logger } from "../runtime/log.ts";
import { ensurePrivateDir, runSupervisor } from "../runtime/supervisor/mod.ts";
import { MANAGER_PROTOCOL_ENV } from "../runtime/notify.ts";
import { closeFd } from "../runtime/sys/mod.ts";
import type { ServeOptions } from "./serve.ts";

/** The apprun checkout this command runs from (for the worker's `deno run`). */
const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** Options only the supervisor uses: not passed to the worker. */
const SUPERVISOR_ONLY = new Set([
  "--port",
  "--host",
  "--unix",
  "--watch",
  "--name",
  "--control",
  "--bin",
]);
const TAKES_VALUE = new Set(["--port", "--host", "--unix", "--name", "--control", "--bin"]);

/** The command line minus the handler and the supervisor's own options. */
export function workerArgs(args: readonly string[], handler: string | undefined): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const name = a.split("=")[0];
    if (SUPERVISOR_ONLY.has(name)) {
      if (!a.includes("=") && TAKES_VALUE.has(name)) i++;
      continue;
    }
    if (a === handler) continue;
    out.push(a);
  }
  return out;
}

/** The control socket of the supervisor called `name` (what `apprun status|upgrade` use). */
export function controlSocketPath(name: string): string {
  const runtimeDir = Deno.env.get("XDG_RUNTIME_DIR");
  const dir = runtimeDir ? `${runtimeDir}/apprun` : `/tmp/apprun-${Deno.uid()}`;
  return `${dir}/${name}.sock`;
}

/** The default name of a service: the handler's (or binary's) file name without extension. */
export function defaultName(handler: string | undefined): string {
  const base = (handler ?? Deno.execPath()).split("/").pop() ?? "apprun";
  return base.replace(/\.[cm]?[jt]sx?$/, "") || "apprun";
}

/** Runs the supervisor until it stops. Returns the exit status. */
export async function runSupervised(
  opts: ServeOptions,
  args: readonly string[],
  log: Logger,
): Promise<number> {
  const name = opts.name ?? defaultName(opts.handler);
  const listeners: Listener[] = openListeners({
    port: opts.port ?? (opts.unix.length > 0 ? undefined : 8000),
    host: opts.host,
    unix: opts.unix,
  });
  const control = opts.control ?? controlSocketPath(name);
  await ensurePrivateDir(control.slice(0, control.lastIndexOf("/")));
  const rest = workerArgs(args, opts.handler);
  const env = Deno.env.toObject();
  for (const k of MANAGER_PROTOCOL_ENV) delete env[k];
  const fdStoreMax = 16;
  // systemd ≥ 254 tells the service its store size in $FDSTORE; so do we.
  env.FDSTORE = String(fdStoreMax);
  // The worker stops if we die (SIGKILL leaves no chance to stop it ourselves).
  env.APPRUN_SUPERVISOR_PID = String(Deno.pid);
  const handlerArgs = opts.handler !== undefined ? [opts.handler] : [];
  const worker = opts.bin !== undefined
    ? { path: opts.bin, args: ["serve", ...handlerArgs, "--no-supervisor", ...rest], env }
    : Deno.build.standalone
    ? { path: Deno.execPath(), args: ["serve", ...handlerArgs, "--no-supervisor", ...rest], env }
    : {
      path: Deno.execPath(),
      args: [
        "run",
        "--quiet",
        "--allow-all",
        "--no-prompt",
        "--config",
        `${ROOT}/deno.json`,
        `${ROOT}/cli/main.ts`,
        "serve",
        ...handlerArgs,
        "--no-supervisor",
        ...rest,
      ],
      env,
    };
  const watch = opts.isWatch && opts.handler !== undefined
    ? [
      opts.handler.includes("/")
        ? opts.handler.slice(0, opts.handler.lastIndexOf("/")) || "/"
        : ".",
    ]
    : [];
  log.info(`${name}: control socket ${control}`);
  try {
    return await runSupervisor({
      worker,
      listeners,
      fdStoreMax,
      stopTimeoutMs: opts.drainTimeoutMs + 10_000,
      // Upgrades and --watch restart often; systemd's 5 in 10 s would end the service.
      startLimit: { burst: 30, intervalMs: 60_000 },
      watch,
      controlSocket: control,
      log,
    });
  } finally {
    for (const l of listeners) closeFd(l.fd);
  }
}
