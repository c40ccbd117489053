/**
 * @module
 * The supervisor's options, their systemd counterparts and defaults (systemd.service(5)), and
 * the one place they are validated. Owns no resource: the listeners it is given stay the
 * caller's (the supervisor passes them to every worker and never closes them).
 */
import type { Listener } from "../listen.ts";
import type { Logger } from "../log.ts";
import { SupervisorError } from "./errors.ts";
import { isValidFdName } from "./notify_message.ts";

/** What to run: `path` must be absolute; `args` follow argv[0] (which is `path`). */
export interface WorkerCommand {
  path: string;
  args: string[];
  /** The worker's whole environment; LISTEN_*, NOTIFY_SOCKET and WATCHDOG_* are set by us. */
  env: Record<string, string>;
}

/** How a restart request is handled (Supervisor.restart). */
export interface RestartHow {
  /** Ask `beforeRestart` first (default true; a control request only with `"check": true`). */
  isChecked?: boolean;
  /**
   * Stop a worker that is still starting and start anew, as systemd 252 does (a control
   * request: an upgrade's rollback must not wait for a worker that never gets ready). Default
   * false: merged into one restart after its READY=1, so bursts cost one restart.
   */
  isPreempting?: boolean;
}

/** `Restart=`: the two policies implemented. */
export type RestartPolicy = "on-failure" | "no";

/** `StartLimitBurst=` / `StartLimitIntervalSec=`; either 0 disables the limit. */
export interface StartLimit {
  burst: number;
  intervalMs: number;
}

/** Options for {@linkcode Supervisor} and {@linkcode runSupervisor}. */
export interface SupervisorOptions {
  worker: WorkerCommand;
  /** Passed first, in order, named by `Listener.name` (`FileDescriptorName=`). */
  listeners?: Listener[];
  /** `FileDescriptorStoreMax=`; default 16 (systemd's default is 0: store off). */
  fdStoreMax?: number;
  /** `TimeoutStopSec=` (and `TimeoutAbortSec=`); default 90 s. */
  stopTimeoutMs?: number;
  /** `TimeoutStartSec=`: READY=1 must come in time; default 90 s. */
  startTimeoutMs?: number;
  /** `Restart=`; default "on-failure". */
  restart?: RestartPolicy;
  /** `RestartSec=`; default 100 ms, as systemd. */
  restartDelayMs?: number;
  /** Default 5 starts in 10 s, as systemd. Every start counts: first, requested, automatic. */
  startLimit?: StartLimit;
  /** `WatchdogSec=` in µs; unset or 0: no watchdog. */
  watchdogUsec?: number;
  /**
   * Files or directories whose change restarts the worker (debounced). A file is watched
   * through its directory (an editor's rename over it is seen; other files there are not);
   * a directory, with everything under it. A function is asked for the list at start and
   * again after each restart request has been settled (a module graph changes with imports).
   */
  watch?: string[] | (() => Promise<string[]>);
  /** Quiet time after the last change before a `watch` restart; default 200 ms. */
  watchDebounceMs?: number;
  /** A unix stream socket path for `apprun status` / `apprun upgrade` (mode 0600). */
  controlSocket?: string;
  /**
   * Whether a worker that ends before the first READY=1 ends the supervisor at once, with
   * the worker's status, instead of `restart`'s retries (default false, as systemd: a
   * service that fails to start is restarted like one that crashed).
   */
  isFirstFailureFinal?: boolean;
  /**
   * Whether requested restarts (SIGHUP, `watch`, control requests) count toward the start
   * limit. systemd counts them (default true); without them the limit guards crash loops only.
   */
  isRequestedStartCounted?: boolean;
  /**
   * Asked before each requested restart that keeps the worker command (not an upgrade's new
   * command): a rejection refuses the restart, its message says why, and the running worker
   * goes on serving. Requests made while it runs are settled by the next call. `signal`
   * aborts when the supervisor stops. Not in systemd (apprun: load the new code first).
   */
  beforeRestart?: (reason: string, signal: AbortSignal) => Promise<void>;
  /**
   * `ExecReload=` for a worker command: the command a reload runs as the control process
   * (with `$MAINPID`; its `MAINPID=` may name the next main process). With it, SIGHUP and
   * `watch` reload instead of restarting. Unset: reloads are "not applicable", as in systemd.
   */
  reloadCommand?: (worker: WorkerCommand) => WorkerCommand;
  log: Logger;
}

/** Options with every default filled in. */
type Optional = "watchdogUsec" | "controlSocket" | "beforeRestart" | "reloadCommand";
export type ResolvedOptions =
  & Required<Omit<SupervisorOptions, Optional>>
  & Pick<SupervisorOptions, Optional>;

const MS_90S = 90_000;

/** Fills in defaults and refuses what systemd would refuse. Throws {@linkcode SupervisorError}. */
export function resolveOptions(opts: SupervisorOptions): ResolvedOptions {
  const resolved: ResolvedOptions = {
    worker: checkCommand(opts.worker),
    listeners: opts.listeners ?? [],
    fdStoreMax: opts.fdStoreMax ?? 16,
    stopTimeoutMs: opts.stopTimeoutMs ?? MS_90S,
    startTimeoutMs: opts.startTimeoutMs ?? MS_90S,
    restart: opts.restart ?? "on-failure",
    restartDelayMs: opts.restartDelayMs ?? 100,
    startLimit: opts.startLimit ?? { burst: 5, intervalMs: 10_000 },
    watchdogUsec: opts.watchdogUsec || undefined,
    watch: opts.watch ?? [],
    watchDebounceMs: opts.watchDebounceMs ?? 200,
    controlSocket: opts.controlSocket,
    isFirstFailureFinal: opts.isFirstFailureFinal ?? false,
    isRequestedStartCounted: opts.isRequestedStartCounted ?? true,
    beforeRestart: opts.beforeRestart,
    reloadCommand: opts.reloadCommand,
    log: opts.log,
  };
  const counts: [string, number][] = [
    ["fdStoreMax", resolved.fdStoreMax],
    ["stopTimeoutMs", resolved.stopTimeoutMs],
    ["startTimeoutMs", resolved.startTimeoutMs],
    ["restartDelayMs", resolved.restartDelayMs],
    ["startLimit.burst", resolved.startLimit.burst],
    ["startLimit.intervalMs", resolved.startLimit.intervalMs],
    ["watchDebounceMs", resolved.watchDebounceMs],
    ["watchdogUsec", resolved.watchdogUsec ?? 0],
  ];
  for (const [name, value] of counts) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new SupervisorError(`${name} must be a whole number ≥ 0, not ${value}`);
    }
  }
  if (resolved.restart !== "on-failure" && resolved.restart !== "no") {
    throw new SupervisorError(`restart must be "on-failure" or "no", not "${resolved.restart}"`);
  }
  for (const l of resolved.listeners) {
    // LISTEN_FDNAMES is ':'-separated: systemd refuses such a FileDescriptorName= too.
    if (!isValidFdName(l.name)) {
      throw new SupervisorError(`listener name ${JSON.stringify(l.name)} is not a valid fd name`);
    }
  }
  if (resolved.controlSocket !== undefined && !resolved.controlSocket.startsWith("/")) {
    throw new SupervisorError(
      `controlSocket must be an absolute path: "${resolved.controlSocket}"`,
    );
  }
  return resolved;
}

/** Checks a worker command (also the one a control request sends). */
export function checkCommand(command: WorkerCommand): WorkerCommand {
  if (typeof command?.path !== "string" || !command.path.startsWith("/")) {
    throw new SupervisorError(`the worker path must be absolute: "${command?.path}"`);
  }
  if (!Array.isArray(command.args) || command.args.some((a) => typeof a !== "string")) {
    throw new SupervisorError("the worker args must be an array of strings");
  }
  const env = command.env;
  if (typeof env !== "object" || env === null || Array.isArray(env)) {
    throw new SupervisorError("the worker env must be an object of strings");
  }
  for (const [k, v] of Object.entries(env)) {
    if (
      typeof v !== "string" || k === "" || k.includes("=") || k.includes("\0") || v.includes("\0")
    ) {
      throw new SupervisorError(`the worker env has an invalid entry: ${JSON.stringify(k)}`);
    }
  }
  return { path: command.path, args: [...command.args], env: { ...env } };
}
