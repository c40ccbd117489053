/**
 * @module
 * A private, real systemd user manager for tests. `await using m = await startUserManager()`
 * starts one (through `scripts/systemd/user-manager.sh`, which owns the privileged part: the
 * mount namespace and the sub-cgroup) and stops it — cgroups, runtime dir and temp dir
 * removed — when the scope ends, also after a failed assertion; `systemdTest()` registers a
 * test around one, ignored where none can run. Owns nothing else: the units a test installs
 * are the test's (apprun's own come from `units/`, through `_systemd_app.ts`).
 *
 * The manager runs as root, so it is "a user manager" in protocol (`systemctl --user`,
 * `$XDG_RUNTIME_DIR/systemd/notify`, units in `$XDG_CONFIG_HOME/systemd/user/`) but has the
 * privileges of a system one; tests that depend on the difference must say so.
 */
import type { RenderedUnit } from "../units/mod.ts";
import { type CommandResult, exists, run, which } from "./_proc.ts";
import { waitUntil } from "./_poll.ts";

const SCRIPT = new URL("../scripts/systemd/user-manager.sh", import.meta.url).pathname;
const SYSTEMD = "/usr/lib/systemd/systemd";
const CGROUP_ROOT = "/sys/fs/cgroup";

/** The cgroup hierarchies systemd uses here: pure cgroup2, or the hybrid named + unified pair. */
function cgroupHierarchies(): string[] {
  if (exists(`${CGROUP_ROOT}/cgroup.procs`)) return [CGROUP_ROOT];
  return [`${CGROUP_ROOT}/systemd`, `${CGROUP_ROOT}/unified`]
    .filter((h) => exists(`${h}/cgroup.procs`));
}

let availability: string | null | undefined;

/**
 * Why a private user manager cannot run on this machine, or `null` when it can. Tests pass
 * `ignore: isAvailable() !== null` and print the reason. Probes the cgroup fs by creating and
 * removing one empty directory; the answer is cached.
 */
export function isAvailable(): string | null {
  if (availability !== undefined) return availability;
  availability = probe();
  return availability;

  function probe(): string | null {
    if (Deno.build.os !== "linux") return `systemd needs Linux (this is ${Deno.build.os})`;
    if (Deno.uid() !== 0) return `the private user manager needs root (uid is ${Deno.uid()})`;
    if (!exists(SYSTEMD)) return `${SYSTEMD} is not installed`;
    for (const tool of ["systemctl", "unshare", "mount", "md5sum"]) {
      if (!which(tool)) return `${tool} is not on PATH`;
    }
    const hierarchies = cgroupHierarchies();
    if (hierarchies.length === 0) return `no cgroup hierarchy under ${CGROUP_ROOT}`;
    for (const h of hierarchies) {
      const probeDir = `${h}/apprun-probe-${Deno.pid}`;
      try {
        Deno.mkdirSync(probeDir);
        Deno.removeSync(probeDir);
      } catch (err) {
        return `cannot create a cgroup under ${h}: ${(err as Error).message}`;
      }
    }
    return null;
  }
}

let isReasonPrinted = false;

/** `isAvailable()` for a test's `ignore:`, with the reason printed (once) where it is not. */
export function skipWithoutSystemd(): string | null {
  const reason = isAvailable();
  if (reason !== null && !isReasonPrinted) {
    isReasonPrinted = true;
    console.log(`skip: every test that needs a private systemd: ${reason}`);
  }
  return reason;
}

/**
 * Registers a test that runs against its own private user manager, stopped when it ends (also
 * after a failed assertion); ignored where none can run.
 */
export function systemdTest(
  name: string,
  fn: (m: UserManager) => Promise<void>,
  opts: Omit<Deno.TestDefinition, "name" | "fn" | "ignore"> = {},
): void {
  const reason = skipWithoutSystemd();
  Deno.test({
    ...opts,
    name,
    ignore: reason !== null,
    async fn() {
      await using m = await startUserManager();
      await fn(m);
    },
  });
}

/** A running private user manager. Dispose it (or call `stop()`) to end it. */
export class UserManager implements AsyncDisposable {
  /** Variables that point `systemctl --user` (and `systemd-run --user`) at this manager. */
  readonly env: Readonly<Record<string, string>>;
  /** The state dir (config, cache, pid file). Ours to delete when `ownsDir`. */
  readonly dir: string;
  /** Where unit files go (`$XDG_CONFIG_HOME/systemd/user`). */
  readonly unitDir: string;
  /** `$XDG_RUNTIME_DIR`: the notify socket and `systemd/private` live here. */
  readonly runtimeDir: string;
  /** The manager's pid (systemd itself). */
  readonly pid: number;
  /** The manager's sub-cgroup in every hierarchy; all removed by `stop()`. */
  readonly cgroupDirs: readonly string[];
  #ownsDir: boolean;
  #isStopped = false;

  constructor(init: {
    env: Record<string, string>;
    dir: string;
    pid: number;
    cgroup: string;
    ownsDir: boolean;
  }) {
    this.env = Object.freeze({ ...init.env });
    this.dir = init.dir;
    this.runtimeDir = init.env.XDG_RUNTIME_DIR;
    this.unitDir = `${init.env.XDG_CONFIG_HOME}/systemd/user`;
    this.pid = init.pid;
    this.cgroupDirs = cgroupHierarchies().map((h) => `${h}/${init.cgroup}`);
    this.#ownsDir = init.ownsDir;
  }

  /** Writes `$unitDir/<name>` (call `daemonReload()` after). Returns its path. */
  async writeUnit(name: string, text: string): Promise<string> {
    if (!/^[A-Za-z0-9@_.:\\-]+\.[a-z]+$/.test(name)) throw new Error(`bad unit file name: ${name}`);
    const path = `${this.unitDir}/${name}`;
    await Deno.writeTextFile(path, text);
    return path;
  }

  /** `systemctl --user <args>`, without a pager or colours. */
  systemctl(...args: string[]): Promise<CommandResult> {
    return run("systemctl", ["--user", ...args], { env: { ...this.env } });
  }

  /** `systemctl --user start UNIT…`; throws with systemctl's error and the manager's log. */
  async start(...units: string[]): Promise<void> {
    const r = await this.systemctl("start", ...units);
    if (r.code !== 0) throw new Error(`start ${units.join(" ")}: ${r.stderr}\n${await this.log()}`);
  }

  /**
   * Writes `units` and reloads the manager. With `logFile`, each service's stdout and stderr
   * are appended to it (a file outside PrivateTmp=: the private manager has no journal).
   */
  async installUnits(units: readonly RenderedUnit[], { logFile = "" } = {}): Promise<void> {
    for (const u of units) {
      const isService = u.file.endsWith(".service") && logFile !== "";
      const output = `StandardOutput=append:${logFile}\nStandardError=append:${logFile}\n`;
      await this.writeUnit(
        u.file,
        isService ? u.text.replace("[Service]\n", `[Service]\n${output}`) : u.text,
      );
    }
    await this.daemonReload();
  }

  /** One property of `unit` (or of the manager itself when `unit` is ""), trimmed. */
  async show(unit: string, prop: string): Promise<string> {
    const args = ["show", "-p", prop, "--value", ...(unit ? [unit] : [])];
    const r = await this.systemctl(...args);
    if (r.code !== 0) throw new Error(`systemctl ${args.join(" ")}: ${r.stderr.trim()}`);
    return r.stdout.trim();
  }

  /** `systemctl --user daemon-reload`; throws when it fails. */
  async daemonReload(): Promise<void> {
    const r = await this.systemctl("daemon-reload");
    if (r.code !== 0) throw new Error(`daemon-reload failed: ${r.stderr.trim()}`);
  }

  /** Polls `show(unit, prop)` until it equals `value`; throws with the last value on timeout. */
  async waitFor(unit: string, prop: string, value: string, timeoutMs = 10_000): Promise<void> {
    let last = "";
    await waitUntil(
      async () => (last = await this.show(unit, prop)) === value,
      () => `${unit || "manager"} ${prop} to be ${value} (it is ${JSON.stringify(last)})`,
      { timeoutMs, everyMs: 50 },
    );
  }

  /** The manager's lines in the kernel log (it logs to kmsg), for failure messages. */
  async log(): Promise<string> {
    const r = await run("dmesg", []);
    return r.stdout.split("\n").filter((l) => /systemd\[|\)\[\d+\]:/.test(l)).slice(-40)
      .join("\n");
  }

  /**
   * Stops the manager and removes its cgroups, runtime dir and (when we made it) its temp
   * dir. Idempotent. Processes the manager left in its sub-cgroup are SIGKILLed by the
   * script; throws if a cgroup directory is still present afterwards.
   */
  async stop(): Promise<void> {
    if (this.#isStopped) return;
    this.#isStopped = true;
    const r = await run(SCRIPT, ["stop", this.dir]);
    if (this.#ownsDir) await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    if (r.code !== 0) throw new Error(`user-manager.sh stop failed: ${r.stderr.trim()}`);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/**
 * Starts a private user manager with its state in `dir` (default: a new temp dir, removed on
 * stop). Throws, after cleaning up, when it cannot start; check `isAvailable()` first.
 */
export async function startUserManager(dir?: string): Promise<UserManager> {
  const ownsDir = dir === undefined;
  const stateDir = dir ?? await Deno.makeTempDir({ prefix: "apprun-systemd-" });
  const r = await run(SCRIPT, ["start", stateDir]);
  try {
    if (r.code !== 0) throw new Error(`user-manager.sh start failed: ${r.stderr.trim()}`);
    const exported = Object.fromEntries(
      [...r.stdout.matchAll(/([A-Z_]+)='([^']*)'/g)].map((m) => [m[1], m[2]]),
    );
    const { XDG_RUNTIME_DIR, XDG_CONFIG_HOME, APPRUN_SYSTEMD_CGROUP } = exported;
    if (!XDG_RUNTIME_DIR || !XDG_CONFIG_HOME || !APPRUN_SYSTEMD_CGROUP) {
      throw new Error(`user-manager.sh start printed no exports: ${r.stdout}`);
    }
    const pid = Number(await Deno.readTextFile(`${stateDir}/manager.pid`));
    return new UserManager({
      env: {
        XDG_RUNTIME_DIR,
        XDG_CONFIG_HOME,
        SYSTEMD_PAGER: "",
        SYSTEMD_COLORS: "0",
      },
      // As given, not resolved: the script derives the cgroup name from this exact path.
      dir: stateDir,
      pid,
      cgroup: APPRUN_SYSTEMD_CGROUP,
      ownsDir,
    });
  } catch (err) {
    await run(SCRIPT, ["stop", stateDir]);
    if (ownsDir) await Deno.remove(stateDir, { recursive: true }).catch(() => {});
    throw err;
  }
}
