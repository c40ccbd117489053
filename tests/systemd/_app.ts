/**
 * Installs the fixture app as real units in a private systemd user manager, rendered by
 * `units/` exactly as `apprun install --user` renders them, with the service's stderr sent to a
 * file the test can read (the private manager has no journal).
 */
import { renderUnits, type UnitSetOptions } from "../../units/mod.ts";
import type { UserManager } from "../_systemd.ts";
import { APPRUN, FIXTURES, ROOT } from "../_helpers.ts";

export function freePort(): number {
  const l = Deno.listen({ port: 0, hostname: "127.0.0.1" });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** What {@linkcode installApp} set up. */
export interface App {
  port: number;
  name: string;
  logFile: string;
  log(): Promise<string>;
}

/** Renders, writes and starts `NAME.socket` (+ `NAME.service`) serving the fixture. */
export async function installApp(
  m: UserManager,
  opts: Partial<UnitSetOptions> & { args?: string[]; isSocketActivated?: boolean } = {},
): Promise<App> {
  const name = opts.name ?? "app";
  const port = freePort();
  const logFile = `${m.runtimeDir}/${name}.log`; // outside PrivateTmp=
  const isSocket = opts.isSocketActivated ?? true;
  const units = renderUnits({
    name,
    scope: "user",
    listeners: isSocket ? [{ kind: "tcp", host: "127.0.0.1", port, name: "web" }] : [],
    execStart: [
      APPRUN,
      "serve",
      `${FIXTURES}/systemd_app.ts`,
      ...(isSocket ? [] : ["--port", String(port), "--host", "127.0.0.1"]),
      "--idle-timeout",
      "300s",
      ...(opts.args ?? []),
    ],
    drainTimeout: 10,
    // A checkout under /tmp (a CI clone) is hidden by PrivateTmp=: bind it back in.
    bindReadOnlyPaths: /^\/(var\/)?tmp\//.test(ROOT) ? [ROOT] : [],
    ...opts,
  });
  for (const u of units) {
    // The private manager has no journald: keep the service's log in a file.
    const text = u.file.endsWith(".service")
      ? u.text.replace("[Service]\n", `[Service]\nStandardError=append:${logFile}\n`)
      : u.text;
    await m.writeUnit(u.file, text);
  }
  await m.daemonReload();
  const r = await m.systemctl("start", isSocket ? `${name}.socket` : `${name}.service`);
  if (r.code !== 0) throw new Error(`start failed: ${r.stderr}\n${await m.log()}`);
  return {
    port,
    name,
    logFile,
    log: () => Deno.readTextFile(logFile).catch(() => ""),
  };
}

/** GET /r?id=… on a fresh connection: `[id, pid]`. */
export async function ask(port: number, id = "x"): Promise<[string, number]> {
  const res = await fetch(`http://127.0.0.1:${port}/r?id=${id}`);
  const [answer, pid] = (await res.text()).split(" ");
  return [answer, Number(pid)];
}
