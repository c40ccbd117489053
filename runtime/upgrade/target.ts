/**
 * @module
 * What restarts the service: systemd (`systemctl restart NAME.service`; Type=notify returns
 * once READY=1 came or the start failed) or apprun's embedded supervisor (a `restart` request
 * on its control socket, answered once the new worker sent READY=1 or failed). Both hand
 * every connection over through their fdstore. Both also reload (warm: `systemctl reload`, the
 * control socket's `reload`): the next process takes every connection over from the running
 * one, which serves until then; {@linkcode nextVersion} prefers that and falls back to the
 * restart where the unit or the running version cannot. When neither runs NAME (a package
 * installed in a chroot, a service never started) there is nothing to restart:
 * {@linkcode NoTarget}. One interface; finding which one runs NAME is {@linkcode findTarget}.
 * Owns no resource between calls.
 */
import { type ControlRequest, supervisorRequest } from "../supervisor/mod.ts";
import { describeError } from "../errors.ts";
import { UpgradeError } from "./errors.ts";
import { formatMs, lastLine } from "./exec.ts";
import type { Scope } from "./layout.ts";
import { isSystemdRunning, showUnit, systemctl, systemctlWords } from "./systemd.ts";

/** Where the service is in its life, in the supervisor's words (systemd's mapped onto them). */
export type TargetState =
  | "ready"
  | "reloading"
  | "starting"
  | "stopping"
  | "auto-restart"
  | "failed"
  | "stopped"
  | "unknown";

/** A snapshot of the service. */
export interface TargetStatus {
  state: TargetState;
  pid: number | null;
  /** The last STATUS= line. */
  text: string;
  /** Everything else worth printing, as `key: value` lines. */
  details: [string, string][];
}

/** A restart (or reload) that did not end with a ready process. */
export class RestartFailure extends UpgradeError {
  override name = "RestartFailure";
  readonly isTimeout: boolean;
  /** The failed process's last `STATUS=`: its own words on why, when it said any. */
  readonly statusText: string | undefined;
  /** A reload that could not even begin: the unit or the running version has none. */
  readonly isUnavailable: boolean;
  constructor(
    message: string,
    isTimeout: boolean,
    options?: ErrorOptions & { statusText?: string; isUnavailable?: boolean },
  ) {
    super(message, options);
    this.isTimeout = isTimeout;
    this.statusText = options?.statusText || undefined;
    this.isUnavailable = options?.isUnavailable ?? false;
  }
}

/** The reload helper's exit status when the running process offers no takeover (worker/). */
const NO_TAKEOVER = 69;

/** The thing that restarts NAME. */
export interface RestartTarget {
  readonly kind: "systemd" | "supervisor" | "none";
  /** "systemd --user (hello.service)", "the supervisor on /run/user/0/apprun/hello.sock". */
  readonly label: string;
  status(): Promise<TargetStatus>;
  /** Restarts; resolves with the new pid once it is ready. Throws {@linkcode RestartFailure}. */
  restart(timeoutMs: number): Promise<{ pid: number }>;
  /**
   * Reloads (warm); resolves with the new main pid. Throws {@linkcode RestartFailure}
   * (`isUnavailable` when no reload can happen here: then nothing was touched).
   */
  reload(timeoutMs: number): Promise<{ pid: number }>;
}

/** How the next version came: warm (reload) or cold (restart), and its pid. */
export interface NextVersion {
  pid: number;
  path: "warm" | "cold";
  /** Why not warm, when cold. */
  whyCold?: string;
}

/** "reloaded (warm) through T in 12 ms: pid 1 → 2, ready" (cold: "restarted (cold) …, …"). */
export function describeNext(
  next: NextVersion,
  target: RestartTarget,
  ms: number,
  oldPid: number | null,
): string {
  const verb = next.path === "warm" ? "reloaded (warm)" : "restarted (cold)";
  const why = next.whyCold ? ` (no warm reload: ${next.whyCold})` : "";
  return `${verb} through ${target.label} in ${formatMs(ms)}: pid ${oldPid ?? "-"} → ` +
    `${next.pid}, ready${why}`;
}

/**
 * The next version of the service: a warm reload where the unit and the running version
 * can, else a restart. Throws {@linkcode RestartFailure}: a failed warm reload left the
 * running process serving (nothing to roll back but the file); a failed restart did not.
 */
export async function nextVersion(target: RestartTarget, timeoutMs: number): Promise<NextVersion> {
  try {
    return { ...await target.reload(timeoutMs), path: "warm" };
  } catch (err) {
    if (!(err instanceof RestartFailure) || !err.isUnavailable) throw err;
    return { ...await target.restart(timeoutMs), path: "cold", whyCold: err.message };
  }
}

const SYSTEMD_STATES: Record<string, TargetState> = {
  "active/running": "ready",
  "active/reload": "reloading",
  "reloading/reload": "reloading",
  "activating/start": "starting",
  "activating/auto-restart": "auto-restart",
  "deactivating/stop-sigterm": "stopping",
  "deactivating/stop-sigkill": "stopping",
  "deactivating/stop-watchdog": "stopping",
  "deactivating/stop": "stopping",
  "failed/failed": "failed",
  "inactive/dead": "stopped",
};

/** NAME.service under systemd. */
export class SystemdTarget implements RestartTarget {
  readonly kind = "systemd";
  readonly label: string;
  readonly #scope: Scope;
  readonly #unit: string;

  constructor(name: string, scope: Scope) {
    this.#scope = scope;
    this.#unit = `${name}.service`;
    this.label = `systemd${scope === "user" ? " --user" : ""} (${this.#unit})`;
  }

  async status(): Promise<TargetStatus> {
    const p = await showUnit(this.#scope, this.#unit, [
      "ActiveState",
      "SubState",
      "MainPID",
      "StatusText",
      "NFileDescriptorStore",
      "NRestarts",
      "Result",
      "ExecMainStartTimestamp",
    ]);
    const pid = Number(p.MainPID) || null;
    const key = `${p.ActiveState}/${p.SubState}`;
    return {
      state: SYSTEMD_STATES[key] ?? (p.ActiveState === "active" ? "ready" : "unknown"),
      pid,
      text: p.StatusText,
      details: [
        ["state", `${p.ActiveState} (${p.SubState})`],
        ["stored fds", p.NFileDescriptorStore || "0"],
        ["restarts", p.NRestarts || "0"],
        ["result", p.Result],
        ["started", p.ExecMainStartTimestamp || "-"],
      ],
    };
  }

  async restart(timeoutMs: number): Promise<{ pid: number }> {
    const before = (await this.status()).pid;
    const r = await systemctl(this.#scope, ["restart", this.#unit], timeoutMs);
    const ctl = [...systemctlWords(this.#scope), "restart", this.#unit].join(" ");
    if (r.isTimedOut) {
      throw new RestartFailure(`no READY=1 within ${formatMs(timeoutMs)} (${ctl})`, true);
    }
    const after = await this.status();
    if (r.code !== 0) {
      const result = after.details.find(([k]) => k === "result")?.[1];
      throw new RestartFailure(`${ctl} failed: ${lastLine(r)} (result: ${result})`, false, {
        statusText: after.text,
      });
    }
    return { pid: this.#newMainPid(ctl, after, before) };
  }

  async reload(timeoutMs: number): Promise<{ pid: number }> {
    const ctl = [...systemctlWords(this.#scope), "reload", this.#unit].join(" ");
    const can = await showUnit(this.#scope, this.#unit, ["CanReload"]);
    if (can.CanReload !== "yes") {
      throw new RestartFailure(
        `${this.#unit} has no ExecReload= (installed before warm reloads)`,
        false,
        {
          isUnavailable: true,
        },
      );
    }
    const before = (await this.status()).pid;
    const r = await systemctl(this.#scope, ["reload", this.#unit], timeoutMs);
    if (r.isTimedOut) {
      throw new RestartFailure(
        `the reload did not finish within ${formatMs(timeoutMs)} (${ctl})`,
        true,
      );
    }
    const after = await this.status();
    if (r.code !== 0) {
      const exec = await showUnit(this.#scope, this.#unit, ["ExecReload", "ReloadResult"]);
      const status = Number(/status=(\d+)/.exec(exec.ExecReload)?.[1] ?? -1);
      // The reload helper's last STATUS= says why (read at once: the running process's next
      // status line replaces it).
      const said = /^reload failed: (.*)$/.exec(after.text)?.[1];
      const why = said ?? `${lastLine(r)} (${exec.ReloadResult})`;
      throw new RestartFailure(`${ctl} failed: ${why}`, false, {
        isUnavailable: status === NO_TAKEOVER,
      });
    }
    return { pid: this.#newMainPid(ctl, after, before) };
  }

  /** The new main pid once `ctl` returned 0; throws when the unit is not ready with one. */
  #newMainPid(ctl: string, after: TargetStatus, before: number | null): number {
    if (after.state !== "ready" || after.pid === null || after.pid === before) {
      throw new RestartFailure(
        `${ctl} returned, but ${this.#unit} is ${after.details[0][1]} with MainPID ` +
          `${after.pid ?? 0} (was ${before ?? 0})`,
        false,
      );
    }
    return after.pid;
  }
}

/** NAME under apprun's embedded supervisor, through its control socket. */
export class SupervisorTarget implements RestartTarget {
  readonly kind = "supervisor";
  readonly label: string;
  readonly path: string;

  constructor(path: string) {
    this.path = path;
    this.label = `the supervisor on ${path}`;
  }

  async status(): Promise<TargetStatus> {
    const r = await supervisorRequest(this.path, { cmd: "status" }, 10_000);
    if (!r.ok) throw new UpgradeError(`${this.label}: ${r.error}`);
    if (!("state" in r)) throw new UpgradeError(`${this.label}: not a status reply`);
    const stored = r.storedFds.map((s) => `${s.name} ×${s.count}`).join(", ") || "none";
    return {
      state: r.state === "idle" || r.state === "killing" ? "unknown" : r.state,
      pid: r.pid,
      text: r.status,
      details: [
        ["state", r.state],
        ["generation", String(r.generation)],
        ["stored fds", stored],
        ["restarts", String(r.restarts)],
        ["last handoff", r.lastHandoffMs === null ? "-" : `${r.lastHandoffMs} ms`],
      ],
    };
  }

  restart(timeoutMs: number): Promise<{ pid: number }> {
    return this.#ask({ cmd: "restart" }, timeoutMs);
  }

  reload(timeoutMs: number): Promise<{ pid: number }> {
    // The reload's own deadline, so that a next version that never gets ready is ended by it.
    return this.#ask({ cmd: "reload", timeoutMs }, timeoutMs + 5000);
  }

  async #ask(request: ControlRequest, timeoutMs: number): Promise<{ pid: number }> {
    let reply;
    try {
      reply = await supervisorRequest(this.path, request, timeoutMs);
    } catch (err) {
      const isTimeout = /no reply/.test((err as Error).message);
      const what = isTimeout ? `no READY=1 within ${formatMs(timeoutMs)}` : describeError(err);
      throw new RestartFailure(`${this.label}: ${what}`, isTimeout);
    }
    if (!reply.ok) {
      // A reload that cannot happen here (no reload command, a running version from before
      // warm reloads) changed nothing: the caller restarts instead.
      const isUnavailable = /not applicable|offers no warm takeover/.test(reply.error);
      throw new RestartFailure(`${this.label}: ${reply.error}`, false, {
        isUnavailable,
        statusText: reply.status,
      });
    }
    if (!("pid" in reply) || typeof reply.pid !== "number") {
      throw new RestartFailure(`${this.label}: not a ${request.cmd} reply`, false);
    }
    return { pid: reply.pid };
  }
}

/** Nothing runs NAME: upgrades swap the file, and its next start runs it. */
export class NoTarget implements RestartTarget {
  readonly kind = "none";
  readonly label: string;

  constructor(why: string) {
    this.label = `no manager (${why})`;
  }

  status(): Promise<TargetStatus> {
    return Promise.resolve({ state: "stopped", pid: null, text: "", details: [] });
  }

  restart(): Promise<{ pid: number }> {
    return Promise.reject(new RestartFailure(`nothing runs it: ${this.label}`, false));
  }

  reload(): Promise<{ pid: number }> {
    return this.restart();
  }
}

/** Options for {@linkcode findTarget}. */
export interface FindTargetOptions {
  name: string;
  scope: Scope;
  /** `--control`: use this supervisor, nothing else. */
  control?: string;
  /** Where NAME's supervisor listens by default. */
  defaultControl: string;
}

/**
 * Which manager runs NAME: the supervisor given with `--control` (it must answer: throws
 * {@linkcode UpgradeError}); else systemd when it has NAME.service loaded; else a supervisor
 * answering on the default control socket; else {@linkcode NoTarget}.
 */
export async function findTarget(opts: FindTargetOptions): Promise<RestartTarget> {
  if (opts.control !== undefined) {
    const t = new SupervisorTarget(opts.control);
    await t.status().catch((err) => {
      throw new UpgradeError(`no supervisor answers on ${opts.control}: ${describeError(err)}`);
    });
    return t;
  }
  if (await isSystemdRunning(opts.scope)) {
    const p = await showUnit(opts.scope, `${opts.name}.service`, ["LoadState"]);
    if (p.LoadState === "loaded") return new SystemdTarget(opts.name, opts.scope);
  }
  const t = new SupervisorTarget(opts.defaultControl);
  try {
    await t.status();
    return t;
  } catch {
    const ctl = systemctlWords(opts.scope).join(" ");
    return new NoTarget(
      `${ctl} has no ${opts.name}.service loaded and no supervisor answers on ` +
        `${opts.defaultControl}; a supervisor elsewhere needs --control PATH`,
    );
  }
}
