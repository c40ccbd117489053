/**
 * @module
 * The embedded supervisor: when apprun runs without systemd (no `NOTIFY_SOCKET`), `apprun
 * serve` becomes a tiny service manager that speaks systemd's protocol to its worker. It owns
 * the listeners' passing, a notify socket and an fdstore, starts the worker with
 * `LISTEN_FDS`/`LISTEN_FDNAMES`/`LISTEN_PID`, waits for `READY=1`, and on a restart (SIGHUP, a
 * `--watch` change, a control request) stops the worker with SIGTERM and starts the next one
 * with the stored fds, exactly as `systemctl restart` does. It is generic: any worker that
 * speaks sd_notify(3) and sd_listen_fds(3) works.
 *
 * ## The systemd subset, kept identical (systemd 252; README.md has the full list)
 * A `Type=notify` service with `NotifyAccess=main`, `FileDescriptorStoreMax=` (default 16 here,
 * 0 in systemd), `TimeoutStartSec=`, `TimeoutStopSec=` (also `TimeoutAbortSec=`), `Restart=no|
 * on-failure`, `RestartSec=`, `StartLimitBurst=`/`StartLimitIntervalSec=`, `WatchdogSec=`
 * (`WatchdogSignal=SIGABRT`).
 * - Notify messages: ≤ 4096 bytes, no NUL, sender pid from SCM_CREDENTIALS; lines split as
 *   systemd splits them (backslash escapes included); `READY=1`, `STOPPING=1`, `STATUS=`,
 *   `ERRNO=`, `EXTEND_TIMEOUT_USEC=`, `WATCHDOG=1|trigger`, `WATCHDOG_USEC=`, `FDSTORE=1`
 *   (`FDNAME=`, `FDPOLL=0`), `FDSTOREREMOVE=1`, `BARRIER=1`; `MAINPID=` is refused (logged).
 *   Messages from other pids are ignored (logged once per pid); fds not stored are closed.
 * - fdstore: dedupe by open file (kcmp), overflow closed with a warning, HUP/ERR drop unless
 *   FDPOLL=0, invalid FDNAME= stored as "stored", newest first after the listeners; kept across
 *   restarts and crashes, flushed when the supervisor stops.
 * - Results: exit 0 or death by SIGHUP/SIGINT/SIGTERM/SIGPIPE is clean; a clean exit before
 *   READY=1 is a protocol failure; timeouts and the watchdog are failures. `on-failure`
 *   restarts every failure after `restartDelayMs`; every start counts toward the start limit.
 *
 * ## Not implemented (differences)
 * No cgroup: only the main process gets SIGTERM (as `KillMode=mixed`), and what it leaves in
 * its process group gets SIGKILL once it is gone (no grace period). No `ExecStartPre=`/`Post=`,
 * `ExecReload=`, `RELOADING=1`, `Type=notify-reload`, `NOTIFYACCESS=`, `MAINPIDFD=`,
 * `RuntimeMaxSec=`, `SuccessExitStatus=`, `RestartPreventExitStatus=`, `Restart=always|
 * on-success|on-abnormal|on-watchdog|on-abort`, `FileDescriptorStorePreserve=` (≥ 254).
 * Extensions: a restart request may carry a new worker command, adopted only if its worker
 * sends READY=1 (else the previous command stays: upgrade with rollback); a control socket.
 */
export { runSupervisor } from "./run.ts";
export { Supervisor } from "./supervisor.ts";
export { SupervisorError } from "./errors.ts";
export { RestartRefused } from "./restart_gate.ts";
export { followStarter } from "./starter.ts";
export { checkPrivateDir, ensurePrivateDir } from "./control_dir.ts";
export {
  type ControlReply,
  type ControlRequest,
  type ErrorReply,
  type RestartReply,
  type StatusReply,
  supervisorRequest,
} from "./control.ts";
export type { RestartPolicy, StartLimit, SupervisorOptions, WorkerCommand } from "./options.ts";
export type { WorkerState } from "./worker_state.ts";
export type { ServiceResult } from "./worker.ts";
