/**
 * @module
 * A service's default name and its supervisor's control socket: what `apprun serve`,
 * `status`, `install` and `upgrade` agree on. Pure functions of the environment; kept apart
 * from supervised.ts so the commands that only need a name do not load the supervisor.
 */

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
