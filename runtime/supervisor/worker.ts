/**
 * @module
 * Starting one worker the way systemd's exec does for a Type=notify service, and judging how
 * it ended (is_clean_exit). The environment follows sd_listen_fds(3) and sd_watchdog_enabled(3):
 * LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID only when fds are passed, WATCHDOG_USEC/WATCHDOG_PID
 * only with a watchdog, NOTIFY_SOCKET always. LISTEN_PID and WATCHDOG_PID must be the worker's
 * own pid, which posix_spawn cannot write into the environment of a child it has not created
 * yet, so the worker is started through `/bin/sh -c 'export LISTEN_PID=$$; exec "$0" "$@"'`:
 * `$$` is sh's pid, which `exec` keeps. Without fds or a watchdog it is spawned directly.
 *
 * The worker gets its own process group (so a terminal's Ctrl-C reaches only the supervisor,
 * which then stops it in order). Owns nothing after return: the caller owns the pidfd; the
 * passed fds stay the caller's (the child has its own copies at 3, 4, …).
 */
import { pidfdOpen, sendSignal, SIGNALS, spawnProcess } from "../sys/mod.ts";
import type { ExitStatus } from "../sys/mod.ts";
import { SupervisorError } from "./errors.ts";
import type { WorkerCommand } from "./options.ts";

/** Variables the supervisor sets; a caller's values for them are dropped. */
const OURS = [
  "LISTEN_FDS",
  "LISTEN_PID",
  "LISTEN_FDNAMES",
  "NOTIFY_SOCKET",
  "WATCHDOG_USEC",
  "WATCHDOG_PID",
];

/** Options for {@linkcode spawnWorker}. */
export interface SpawnWorkerOptions {
  command: WorkerCommand;
  /** Listeners first, then stored fds, each with its name. Not closed. */
  fds: readonly { fd: number; name: string }[];
  notifySocket: string;
  watchdogUsec?: number;
}

/** A started worker. The caller owns `pidfd`. */
export interface SpawnedWorker {
  pid: number;
  pidfd: number;
}

/** Starts the worker. Throws {@linkcode SupervisorError} when it cannot be started. */
export function spawnWorker(opts: SpawnWorkerOptions): SpawnedWorker {
  const { command } = opts;
  try {
    const info = Deno.statSync(command.path);
    if (!info.isFile || ((info.mode ?? 0o111) & 0o111) === 0) {
      throw new SupervisorError(`${command.path} is not an executable file`);
    }
  } catch (err) {
    if (err instanceof SupervisorError) throw err;
    throw new SupervisorError(`cannot run ${command.path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(command.env)) if (!OURS.includes(k)) env[k] = v;
  env.NOTIFY_SOCKET = opts.notifySocket;
  const ownPid: string[] = [];
  if (opts.fds.length > 0) {
    env.LISTEN_FDS = String(opts.fds.length);
    env.LISTEN_FDNAMES = opts.fds.map((f) => f.name).join(":");
    ownPid.push("LISTEN_PID");
  }
  if (opts.watchdogUsec) {
    env.WATCHDOG_USEC = String(opts.watchdogUsec);
    ownPid.push("WATCHDOG_PID");
  }
  const [path, args] = ownPid.length === 0
    ? [command.path, [command.path, ...command.args]]
    : ["/bin/sh", [
      "/bin/sh",
      "-c",
      `${ownPid.map((v) => `${v}=$$`).join(" ")}; export ${ownPid.join(" ")}; exec "$0" "$@"`,
      command.path,
      ...command.args,
    ]];
  let pid: number;
  try {
    pid = spawnProcess({
      path,
      args,
      env,
      passFds: opts.fds.map((f) => f.fd),
      isNewProcessGroup: true,
    });
  } catch (err) {
    throw new SupervisorError(`cannot start ${command.path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  try {
    return { pid, pidfd: pidfdOpen(pid) };
  } catch (err) {
    // Without a pidfd we cannot watch it: do not leave it running unsupervised.
    sendSignal(pid, SIGNALS.SIGKILL);
    throw new SupervisorError(`cannot watch worker ${pid}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** systemd's service results that the supervisor can produce (systemd.exec(5) $SERVICE_RESULT). */
export type ServiceResult =
  | "success"
  | "protocol"
  | "timeout"
  | "exit-code"
  | "signal"
  | "watchdog"
  | "start-limit-hit";

const CLEAN_SIGNALS = [SIGNALS.SIGHUP, SIGNALS.SIGINT, SIGNALS.SIGTERM, SIGNALS.SIGPIPE];

/**
 * is_clean_exit(…, EXIT_CLEAN_DAEMON): status 0, or killed by SIGHUP, SIGINT, SIGTERM or
 * SIGPIPE (a daemon without handlers for them did not fail), whoever sent the signal.
 */
export function isCleanExit(status: ExitStatus): boolean {
  return status.code === 0 || (status.signal !== null && CLEAN_SIGNALS.includes(status.signal));
}

/** "exited with status 3", "killed by SIGKILL". */
export function describeExit(status: ExitStatus): string {
  if (status.code !== null) return `exited with status ${status.code}`;
  const name = Object.entries(SIGNALS).find(([, n]) => n === status.signal)?.[0];
  return `killed by ${name ?? `signal ${status.signal}`}`;
}

/** The supervisor's own exit status when it gives up after `result`. */
export function exitCodeFor(result: ServiceResult, status: ExitStatus | null): number {
  if (result === "success") return 0;
  if (result === "exit-code" && status?.code) return status.code;
  if (result === "signal" && status?.signal) return 128 + status.signal;
  return 1;
}
