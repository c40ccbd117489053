/**
 * @module
 * apprun installed as real units in a private systemd user manager (`_systemd.ts`): the units
 * `units/` renders, exactly as `apprun install --user` renders them (Type=notify, KillMode=mixed,
 * Restart=on-failure, the fdstore, the sandbox), serving a fixture, with the service's output
 * appended to a file the test reads (the private manager has no journal). Every test that runs
 * apprun under systemd without `apprun install` goes through here; only the tests of the
 * manager harness and of the protocol worker write units of their own. Owns the units it
 * writes; the manager (and with it the service) is the caller's to stop.
 */
import { renderUnits, type UnitSetOptions } from "../units/mod.ts";
import type { UserManager } from "./_systemd.ts";
import { APPRUN, FIXTURES, ROOT } from "./_proc.ts";
import { freePort } from "./_net.ts";

/** A checkout under /tmp (a CI clone) is hidden by PrivateTmp=: units that run it bind it back. */
export const BIND_ROOT: string[] = /^\/(var\/)?tmp\//.test(ROOT) ? [ROOT] : [];

/** Options for {@linkcode installApp}: any unit option, plus what runs and how it listens. */
export interface AppUnitOptions extends Partial<UnitSetOptions> {
  /** A file in tests/fixtures (default `systemd_app.ts`: answers `<id> <pid>`). */
  fixture?: string;
  /** More arguments to `apprun serve FIXTURE`. */
  args?: string[];
  /**
   * true (default): a socket unit binds the port and activates the service on the first
   * connection. false: apprun opens `--port` itself (its listener then travels through the
   * fdstore at each handoff) and the service is started at once.
   */
  isSocketActivated?: boolean;
}

/** What {@linkcode installApp} set up. */
export interface InstalledApp {
  port: number;
  /** The unit base name: `${name}.service` (and `${name}.socket`). */
  name: string;
  /** Where the service's stdout and stderr go. */
  logFile: string;
  /** Everything the service wrote so far ("" before its first line). */
  log(): Promise<string>;
}

/** Renders, writes and starts `NAME.socket` (+ `NAME.service`), or `NAME.service` alone. */
export async function installApp(m: UserManager, opts: AppUnitOptions = {}): Promise<InstalledApp> {
  const { fixture = "systemd_app.ts", args = [], isSocketActivated = true, ...unitOpts } = opts;
  const name = opts.name ?? "app";
  const port = freePort();
  const listener = { kind: "tcp", host: "127.0.0.1", port } as const;
  const units = renderUnits({
    name,
    scope: "user",
    listeners: isSocketActivated ? [{ ...listener, name: "web" }] : [],
    ownListeners: isSocketActivated ? [] : [listener],
    execStart: [
      ...[APPRUN, "serve", `${FIXTURES}/${fixture}`],
      ...(isSocketActivated ? [] : ["--port", String(port), "--host", "127.0.0.1"]),
      ...["--idle-timeout", "300s", ...args],
    ],
    drainTimeout: 10,
    bindReadOnlyPaths: BIND_ROOT,
    ...unitOpts,
  });
  const logFile = `${m.runtimeDir}/${name}.log`; // outside PrivateTmp=
  await m.installUnits(units, { logFile });
  await m.start(isSocketActivated ? `${name}.socket` : `${name}.service`);
  return { port, name, logFile, log: () => Deno.readTextFile(logFile).catch(() => "") };
}

/** GET /r?id=… on a fresh connection: `[id, pid]`. */
export async function ask(port: number, id = "x"): Promise<[string, number]> {
  const res = await fetch(`http://127.0.0.1:${port}/r?id=${id}`);
  const [answer, pid] = (await res.text()).split(" ");
  return [answer, Number(pid)];
}
