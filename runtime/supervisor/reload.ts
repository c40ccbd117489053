/**
 * @module
 * Reloads as systemd 252 runs them for a service with `ExecReload=` (service_enter_reload):
 * the reload command is started as the control process, with `$MAINPID` and the notify socket
 * (`NotifyAccess=exec` accepts its messages), while the main process serves on; the reload
 * ends when the control process exits — a success with status 0, else a failure that changes
 * nothing — or is SIGKILLed at the start timeout (TimeoutStartSec= bounds reloads too). A
 * `MAINPID=` it sends before that makes another process the main one (driven by
 * worker_driver.ts). Reload requests made while one runs are queued as one more, as systemd's
 * job queue does (a running reload job is never merged with a new one: the new one waits;
 * further ones merge into the waiting one).
 *
 * Holds the queue and starts the control process; the driver owns its pidfd once started.
 */
import type { RestartReply } from "./control.ts";
import type { WorkerCommand } from "./options.ts";
import { spawnWorker } from "./worker.ts";

/** Reload requests merged into one reload. */
export interface ReloadRequest {
  /** The worker command to reload into (an upgrade's), or undefined: the one in force. */
  command: WorkerCommand | undefined;
  reasons: string[];
  waiters: PromiseWithResolvers<RestartReply>[];
  /** The shortest limit any merged request asked for (else the start timeout), ms. */
  timeoutMs?: number;
}

/** The one reload waiting to run (requests made while another runs merge into it). */
export class ReloadQueue {
  #next: ReloadRequest | null = null;

  /** Queues a request; resolves when the reload that serves it ends. */
  add(
    command: WorkerCommand | undefined,
    reason: string,
    timeoutMs?: number,
  ): Promise<RestartReply> {
    const next = this.#next ??= { command: undefined, reasons: [], waiters: [] };
    if (command !== undefined) next.command = command;
    if (timeoutMs !== undefined) next.timeoutMs = Math.min(next.timeoutMs ?? timeoutMs, timeoutMs);
    if (!next.reasons.includes(reason)) next.reasons.push(reason);
    const waiter = Promise.withResolvers<RestartReply>();
    next.waiters.push(waiter);
    return waiter.promise;
  }

  get hasPending(): boolean {
    return this.#next !== null;
  }

  /** The waiting reload, now to run. */
  take(): ReloadRequest | null {
    const next = this.#next;
    this.#next = null;
    return next;
  }

  /** Nobody will be served (the supervisor stops). */
  rejectAll(err: Error): void {
    for (const w of this.take()?.waiters ?? []) w.reject(err);
  }
}

/** Settles every waiter of `request` with `outcome`. */
export function settleRequest(request: ReloadRequest, outcome: Promise<RestartReply>): void {
  outcome.catch(() => {});
  for (const w of request.waiters) outcome.then(w.resolve, w.reject);
}

/** A running control process. The driver owns `pidfd`. */
export interface ControlProcess {
  pid: number;
  pidfd: number;
  request: ReloadRequest;
  /** The worker command reloaded into: in force once a process running it is the main one. */
  command: WorkerCommand;
  /** The main pid when the reload began. */
  mainAtStart: number;
  startedAt: number;
  /** Its last STATUS= ("" when none): a failed reload's reason. */
  statusText: string;
}

/** Options for {@linkcode startControl}. */
export interface StartControlOptions {
  request: ReloadRequest;
  command: WorkerCommand;
  /** `ExecReload=` for `command`. */
  reloadCommand: (worker: WorkerCommand) => WorkerCommand;
  mainPid: number;
  notifySocket: string;
}

/**
 * Starts the control process, in its own process group, with `$MAINPID` (no listeners: systemd
 * passes socket fds to the main process only). Throws SupervisorError when it cannot start.
 */
export function startControl(opts: StartControlOptions): ControlProcess {
  const helper = opts.reloadCommand(opts.command);
  const { pid, pidfd } = spawnWorker({
    command: { ...helper, env: { ...helper.env, MAINPID: String(opts.mainPid) } },
    fds: [],
    notifySocket: opts.notifySocket,
  });
  return {
    pid,
    pidfd,
    request: opts.request,
    command: opts.command,
    mainAtStart: opts.mainPid,
    startedAt: performance.now(),
    statusText: "",
  };
}
