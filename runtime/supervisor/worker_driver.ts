/**
 * @module
 * Drives the worker's state machine (worker_state.ts) the way systemd drives a `Type=notify`
 * service: spawn with the listeners and the store, READY=1 gating under the start timeout,
 * SIGTERM → stop timeout → SIGKILL, STOPPING=1, the watchdog (SIGABRT), EXTEND_TIMEOUT_USEC=,
 * automatic restart on failure under the start limit, and restart requests (merged while a
 * worker starts or stops, so a burst of them costs one restart), and reloads (reload.ts): the
 * reload command as control process, `MAINPID=` from it making another process the main one.
 * Every state change goes through `#moveTo`. Invariant: the supervisor spawns a worker only
 * after the previous one has been reaped; during a reload a second one may exist, started by
 * the control process, and becomes the main process through `MAINPID=` (the one it replaces
 * is then only reaped).
 *
 * Owns the worker's pidfd (closed when the worker is reaped), the control process's, those of
 * replaced main processes, and its timers. Borrows the loop, the store and the notify socket
 * from the supervisor, which closes them after `onFinished`.
 */
import { describeError } from "../errors.ts";
import type { EventLoop } from "../io/mod.ts";
import type { Logger } from "../log.ts";
import {
  closeFd,
  EPOLLIN,
  type ExitStatus,
  pidfdOpen,
  reapPidfd,
  sendSignal,
  SIGNALS,
} from "../sys/mod.ts";
import type { RestartReply } from "./control.ts";
import { SupervisorError } from "./errors.ts";
import type { FdStore } from "./fdstore.ts";
import type { NotifyTarget } from "./notify_handler.ts";
import { checkCommand, type ResolvedOptions, type WorkerCommand } from "./options.ts";
import { ReadyWaiters } from "./ready_waiters.ts";
import { type ControlProcess, ReloadQueue, settleRequest, startControl } from "./reload.ts";
import { RestartRefused } from "./restart_gate.ts";
import { readProcStat } from "./starter.ts";
import { Deadline, StartLimiter } from "./timers.ts";
import {
  describeExit,
  exitCodeFor,
  isCleanExit,
  type ServiceResult,
  spawnWorker,
} from "./worker.ts";
import { isTerminal, WORKER_MOVES, type WorkerState } from "./worker_state.ts";
import { checkedMove } from "../state_machine.ts";

/** What the driver borrows from the supervisor. */
export interface DriverContext {
  opts: ResolvedOptions;
  loop: EventLoop;
  store: FdStore;
  notifyPath: string;
  /** Processes the queued notify messages; called before an exit is handled. */
  drainNotify(): void;
  /** Called once, on reaching `stopped` or `failed`, with the supervisor's exit status. */
  onFinished(state: "stopped" | "failed", code: number, reason: string): void;
}

interface Worker {
  /** 0 when the spawn itself failed. */
  pid: number;
  pidfd: number;
  /** Its process group (its own pid when we spawned it): what it leaves there goes with it. */
  pgid: number;
  generation: number;
  command: WorkerCommand;
  /** Stored fds passed to it. */
  carried: number;
  spawnedAt: number;
}

const { SIGTERM, SIGKILL, SIGABRT } = SIGNALS;
const ms = (t: number) => Math.round(t);

/** The worker's life. Create it with the supervisor's open resources, then {@linkcode begin}. */
export class WorkerDriver {
  readonly target: NotifyTarget;
  readonly #ctx: DriverContext;
  readonly #opts: ResolvedOptions;
  readonly #log: Logger;
  readonly #startLimit: StartLimiter;
  readonly #timer = new Deadline();
  readonly #watchdog = new Deadline();
  readonly #warned = new Set<string>();
  #state: WorkerState = "idle";
  #command: WorkerCommand;
  /** From a restart request; in force only once a worker running it sent READY=1. */
  #pendingCommand: WorkerCommand | null = null;
  #worker: Worker | null = null;
  #generation = 0;
  #restarts = 0;
  #afterExit: "restart" | "stop" | null = null;
  /** A restart was requested while the worker started: done once it sent READY=1. */
  #isRestartQueued = false;
  /** Whether any worker has sent READY=1 yet (`isFirstFailureFinal` applies until then). */
  #hasBeenReady = false;
  /** The current worker's result; the first failure wins, as in systemd. */
  #result: ServiceResult = "success";
  #watchdogOverrideUsec: number | null = null;
  #statusText = "";
  #statusErrno = 0;
  #stopSentAt: number | null = null;
  #exitedAt: number | null = null;
  #lastHandoffMs: number | null = null;
  readonly #waiters = new ReadyWaiters();
  readonly #reloads = new ReloadQueue();
  #control: ControlProcess | null = null;
  /** Main processes replaced through MAINPID=, not yet reaped. */
  readonly #replaced = new Set<Worker>();
  /** The main process exited during a reload: judged once the control process is done. */
  #mainExit: ExitStatus | null = null;

  constructor(ctx: DriverContext) {
    this.#ctx = ctx;
    this.#opts = ctx.opts;
    this.#log = ctx.opts.log;
    this.#command = ctx.opts.worker;
    this.#startLimit = new StartLimiter(ctx.opts.startLimit.burst, ctx.opts.startLimit.intervalMs);
    this.target = {
      log: this.#log,
      store: ctx.store,
      mainPid: () => this.#worker && this.#worker.pid > 0 ? this.#worker.pid : null,
      controlPid: () => this.#control?.pid ?? null,
      onMainPid: (pid, sender) => this.#onMainPid(pid, sender),
      warnOnce: (key, message) => {
        if (this.#warned.has(key)) return;
        this.#warned.add(key);
        this.#log.warn(message);
      },
      onReady: () => this.#onReady(),
      onStopping: () => this.#onStopping(),
      onStatus: (text, sender) => {
        if (sender === this.#control?.pid) this.#control.statusText = text;
        this.#statusText = text;
      },
      onErrno: (n) => this.#statusErrno = n,
      onExtendTimeout: (usec) => this.#onExtendTimeout(usec),
      onWatchdogPing: () => this.#hasMainRunning() && this.#armWatchdog(),
      onWatchdogTrigger: () =>
        this.#onWatchdog(`watchdog request (last status: ${this.#statusText || "<unset>"})!`),
      onWatchdogUsec: (usec) => {
        this.#watchdogOverrideUsec = usec;
        if (this.#hasMainRunning()) this.#armWatchdog();
      },
    };
  }

  get state(): WorkerState {
    return this.#state;
  }

  /** Ready, or reloading: the main process serves (its watchdog pings count). */
  #hasMainRunning(): boolean {
    return this.#state === "ready" || this.#state === "reloading";
  }

  get command(): WorkerCommand {
    return this.#command;
  }

  /** The fields of a status reply this driver knows. */
  snapshot() {
    const pid = this.#worker && this.#worker.pid > 0 ? this.#worker.pid : null;
    return {
      generation: this.#generation,
      pid,
      state: this.#state,
      status: this.#statusText,
      statusErrno: this.#statusErrno,
      lastHandoffMs: this.#lastHandoffMs,
      restarts: this.#restarts,
    };
  }

  /** Starts the first worker; resolves at the first READY=1, rejects if the supervisor gives up. */
  begin(): Promise<RestartReply> {
    const ready = this.#waiters.add(0, true);
    this.#startNext("first");
    return ready;
  }

  /** See Supervisor.restart() (`isPreempting`: RestartHow). */
  restart(
    command: WorkerCommand | undefined,
    reason: string,
    isPreempting = false,
  ): Promise<RestartReply> {
    const state = this.#state;
    if (isTerminal(state) || this.#afterExit === "stop") {
      const why = isTerminal(state) ? state : "stopping";
      return Promise.reject(new SupervisorError(`cannot restart: the supervisor is ${why}`));
    }
    if (command) this.#pendingCommand = checkCommand(command);
    const ready = this.#waiters.add(this.#generation, false);
    this.#log.info(`restart (${reason})`);
    if (state === "auto-restart") {
      this.#timer.cancel();
      this.#startNext("requested");
    } else if (state === "reloading" || (state === "starting" && !isPreempting)) {
      // Merged into one restart after READY=1, as requests are while stopping: stopping a
      // worker mid-start for each request of a burst (SIGHUPs, file changes) spends the start
      // limit and ends the service. systemd 252 would stop it; the supervisor waits. A reload
      // under way ends first (systemd's restart job waits for the running reload job).
      this.#isRestartQueued = true;
    } else {
      this.#afterExit = "restart";
      if (state === "ready" || state === "starting") this.#sendStop(SIGTERM, "restart");
    }
    return ready;
  }

  /**
   * `systemctl reload` (see Supervisor.reload): runs the reload command for `command` (or the
   * one in force) as the control process once the worker is ready and no reload runs.
   */
  reload(
    command: WorkerCommand | undefined,
    reason: string,
    timeoutMs?: number,
  ): Promise<RestartReply> {
    const state = this.#state;
    if (isTerminal(state) || this.#afterExit === "stop" || state === "idle") {
      const why = state === "idle" ? "not started" : isTerminal(state) ? state : "stopping";
      return Promise.reject(new SupervisorError(`cannot reload: the supervisor is ${why}`));
    }
    if (command) checkCommand(command);
    this.#log.info(`reload (${reason})`);
    if (state === "auto-restart") return this.restart(command, reason);
    const done = this.#reloads.add(command, reason, timeoutMs);
    this.#nextReload();
    return done;
  }

  /** SIGTERM to the worker (if any); `onFinished` follows once it is gone. */
  requestStop(): void {
    if (isTerminal(this.#state) || this.#afterExit === "stop") return;
    this.#afterExit = "stop";
    this.#isRestartQueued = false;
    if (this.#control !== null) {
      // systemd's stop kills the control process too; the main process is stopped once it is
      // gone (whichever process is main by then).
      sendSignal(this.#control.pid, SIGTERM);
      return;
    }
    switch (this.#state) {
      case "idle":
        return this.#finish("stopped", 0, "stopped");
      case "auto-restart":
        this.#timer.cancel();
        return this.#finish("stopped", 0, "stopped");
      case "starting":
      case "ready":
        return this.#sendStop(SIGTERM, "stop");
      default:
        // stopping/killing: the exit finishes the stop.
    }
  }

  /** A worker's pidfd became readable: drain the notify socket first, then reap. */
  #onPidfd(worker: Worker): void {
    // systemd gives its notify socket priority over SIGCHLD, so no message is lost to an exit.
    this.#ctx.drainNotify();
    if (worker.pidfd < 0) return;
    const status = reapPidfd(worker.pidfd);
    if (status === null) return;
    if (worker !== this.#worker) return this.#replacedGone(worker, status);
    if (this.#control === null) return this.#workerGone(status);
    // The main process exited during a reload: judged when the control process is done (a
    // MAINPID= before then makes it a replaced one), as service_sigchld_event() waits.
    this.#closePidfd(worker);
    this.#mainExit = status;
    this.#log.warn(
      `generation ${worker.generation}: pid ${worker.pid} ${describeExit(status)} during a reload`,
    );
  }

  #closePidfd(worker: Worker): void {
    if (worker.pidfd < 0) return;
    this.#ctx.loop.remove(worker.pidfd);
    closeFd(worker.pidfd);
    worker.pidfd = -1;
  }

  #watch(worker: Worker): void {
    this.#ctx.loop.add(worker.pidfd, EPOLLIN, { onEvent: () => this.#onPidfd(worker) });
  }

  /** A main process replaced through MAINPID= ended: reaped, said, nothing else. */
  #replacedGone(worker: Worker, status: ExitStatus): void {
    this.#closePidfd(worker);
    this.#replaced.delete(worker);
    this.#log.info(
      `generation ${worker.generation}: pid ${worker.pid} (replaced as the main process) ` +
        describeExit(status),
    );
  }

  #moveTo(next: WorkerState): void {
    this.#log.debug(`worker: ${this.#state} → ${next}`);
    this.#state = checkedMove(WORKER_MOVES, this.#state, next, "the worker");
  }

  /**
   * Spawns the next worker with the listeners and the store, the start limit permitting
   * (which a requested start passes unless `isRequestedStartCounted`).
   */
  #startNext(why: "first" | "requested" | "automatic"): void {
    if (this.#worker !== null) throw new SupervisorError("internal error: a worker still runs");
    const isCounted = why !== "requested" || this.#opts.isRequestedStartCounted;
    if (isCounted && !this.#startLimit.allow()) {
      const { burst, intervalMs } = this.#opts.startLimit;
      this.#log.error(
        `start request repeated too quickly: more than ${burst} starts in ${intervalMs} ms ` +
          `(the start limit, as StartLimitBurst=/StartLimitIntervalSec=): giving up`,
      );
      this.#result = "start-limit-hit";
      return this.#finish("failed", 1, "start-limit-hit");
    }
    // Whatever restart was queued, this worker is started after it: it serves the request.
    this.#isRestartQueued = false;
    const command = this.#pendingCommand ?? this.#command;
    const generation = ++this.#generation;
    if (generation > 1) this.#restarts++;
    this.#result = "success";
    this.#statusText = "";
    this.#statusErrno = 0;
    this.#watchdogOverrideUsec = null;
    const stored = this.#ctx.store.entries();
    const fds = [...this.#opts.listeners.map((l) => ({ fd: l.fd, name: l.name })), ...stored];
    this.#moveTo("starting");
    const spawnedAt = performance.now();
    const worker: Worker = {
      pid: 0,
      pidfd: -1,
      pgid: 0,
      generation,
      command,
      carried: 0,
      spawnedAt,
    };
    this.#worker = worker;
    try {
      const { notifyPath: notifySocket } = this.#ctx;
      const watchdogUsec = this.#opts.watchdogUsec;
      Object.assign(worker, spawnWorker({ command, fds, notifySocket, watchdogUsec }));
      worker.pgid = worker.pid;
    } catch (err) {
      this.#log.error(`generation ${generation}: ${describeError(err)}`);
      // systemd reports a failed exec as the main process exiting with 203/EXEC.
      return this.#workerGone({ code: 203, signal: null });
    }
    worker.carried = stored.length;
    this.#watch(worker);
    this.#timer.arm(this.#opts.startTimeoutMs, () => this.#onStartTimeout());
    const names = fds.length ? `: ${fds.map((f) => f.name || '""').join(", ")}` : "";
    this.#log.info(
      `generation ${generation}: started ${command.path} as pid ${worker.pid} ` +
        `with ${fds.length} fd(s)${names}`,
    );
  }

  /** The worker exited (or never started): judge the result, then stop, restart or give up. */
  #workerGone(status: ExitStatus): void {
    const worker = this.#worker!;
    this.#closePidfd(worker);
    // No cgroup here: what the worker left in its process group goes now (KillMode=mixed's
    // final SIGKILL, without its grace period).
    if (worker.pgid > 0 && sendSignal(-worker.pgid, SIGKILL)) {
      this.#log.debug(`generation ${worker.generation}: killed its leftover processes`);
    }
    this.#worker = null;
    this.#timer.cancel();
    this.#watchdog.cancel();
    this.#exitedAt = performance.now();
    const wasStarting = this.#state === "starting";
    if (this.#result === "success" && !isCleanExit(status)) {
      this.#result = status.signal !== null ? "signal" : "exit-code";
    } else if (this.#result === "success" && wasStarting) this.#result = "protocol";
    const result = this.#result;
    const what = `generation ${worker.generation}: pid ${worker.pid} ${describeExit(status)}`;
    if (!this.#hasBeenReady && this.#opts.isFirstFailureFinal && this.#afterExit === null) {
      return this.#firstStartFailed(worker, status, what);
    }
    if (result === "success") this.#log.info(what);
    else if (result === "protocol") this.#log.warn(`${what} before sending READY=1 (protocol)`);
    else this.#log.warn(`${what} (${result})`);
    if (wasStarting) this.#stopSentAt = null;
    if (this.#afterExit !== "restart") this.#failWaiters(worker, result);

    if (this.#afterExit === "stop") return this.#finish("stopped", 0, "stopped");
    if (this.#afterExit === "restart") {
      this.#afterExit = null;
      return this.#startNext("requested");
    }
    if (result === "success") {
      this.#log.info("the worker stopped on its own: the supervisor stops too");
      return this.#finish("stopped", 0, "the worker stopped");
    }
    if (this.#opts.restart === "on-failure") {
      this.#moveTo("auto-restart");
      this.#log.info(
        `restarting in ${this.#opts.restartDelayMs} ms (restart: on-failure), ` +
          `keeping ${this.#ctx.store.size} stored fd(s)`,
      );
      this.#timer.arm(this.#opts.restartDelayMs, () => this.#startNext("automatic"));
      return;
    }
    this.#log.error(`the worker failed (${result}) and restart is "no": giving up`);
    this.#finish("failed", exitCodeFor(result, status), result);
  }

  /**
   * `isFirstFailureFinal`: the first worker ended before READY=1. A worker that exited with a
   * status said why itself (apprun's says it in one line): one quiet line here, so the reason
   * is read once; a signal or a protocol failure is the supervisor's to report.
   */
  #firstStartFailed(worker: Worker, status: ExitStatus, what: string): void {
    const result = this.#result;
    const line = `${what} before READY=1 (${result}): the first start failed, giving up`;
    if (result === "exit-code") this.#log.info(line);
    else this.#log.error(line);
    this.#failWaiters(worker, result);
    this.#finish("failed", exitCodeFor(result, status), result);
  }

  /** Waiters for a generation that ended before READY=1, and the rollback of its command. */
  #failWaiters(worker: Worker, result: ServiceResult): void {
    // Its last STATUS= is its own account of why (apprun's worker sends one before it exits).
    const statusText = this.#statusText || undefined;
    const err = new SupervisorError(
      `generation ${worker.generation} (${worker.command.path}) failed to start (${result})` +
        (statusText ? `: ${statusText}` : ""),
      { statusText },
    );
    this.#waiters.failed(worker.generation, err);
    if (this.#pendingCommand === worker.command) {
      this.#pendingCommand = null;
      this.#log.warn(`the new worker command failed to start; ${this.#command.path} stays`);
    }
  }

  #onReady(): void {
    if (this.#state !== "starting") {
      this.#log.debug(`notify: READY=1 ignored in state "${this.#state}"`);
      return;
    }
    const worker = this.#worker!;
    this.#timer.cancel();
    this.#moveTo("ready");
    this.#hasBeenReady = true;
    if (this.#pendingCommand === worker.command) {
      this.#command = worker.command;
      this.#pendingCommand = null;
    }
    this.#armWatchdog();
    const now = performance.now();
    let handoffMs: number | null = null;
    let how: string;
    if (this.#stopSentAt !== null) {
      handoffMs = this.#lastHandoffMs = ms(now - this.#stopSentAt);
      how = `handoff took ${handoffMs} ms (SIGTERM to the old worker → READY=1)`;
    } else if (this.#exitedAt !== null) {
      how = `ready ${ms(now - this.#exitedAt)} ms after the previous worker exited`;
    } else how = `ready ${ms(now - worker.spawnedAt)} ms after its start`;
    this.#stopSentAt = null;
    const status = this.#statusText ? `; status: ${this.#statusText}` : "";
    this.#log.info(
      `generation ${worker.generation} ready: pid ${worker.pid}, ${how}, ` +
        `${worker.carried} stored fd(s) carried${status}`,
    );
    const { pid, generation } = worker;
    this.#waiters.ready({ ok: true, pid, generation, handoffMs });
    this.#afterReady();
  }

  /** Ready (started, or a reload ended): a queued restart first, else a queued reload. */
  #afterReady(): void {
    if (this.#isRestartQueued) {
      this.#isRestartQueued = false;
      this.#afterExit = "restart";
      this.#sendStop(SIGTERM, "restart");
    } else this.#nextReload();
  }

  /** Starts the queued reload, when the worker is ready and no reload runs. */
  #nextReload(): void {
    if (this.#state !== "ready" || this.#control !== null || !this.#reloads.hasPending) return;
    const request = this.#reloads.take()!;
    const worker = this.#worker!;
    const command = request.command ?? this.#pendingCommand ?? this.#command;
    const reasons = request.reasons.join("; ");
    if (this.#opts.reloadCommand === undefined) {
      const err = new SupervisorError("reload is not applicable: no reload command (ExecReload=)");
      return settleRequest(request, Promise.reject(err));
    }
    try {
      this.#control = startControl({
        request,
        command,
        reloadCommand: this.#opts.reloadCommand,
        mainPid: worker.pid,
        notifySocket: this.#ctx.notifyPath,
      });
    } catch (err) {
      this.#log.error(`reload (${reasons}): ${describeError(err)}`);
      return settleRequest(request, Promise.reject(err));
    }
    const control = this.#control;
    this.#ctx.loop.add(control.pidfd, EPOLLIN, { onEvent: () => this.#onControlExit() });
    this.#moveTo("reloading");
    const limit = Math.min(this.#opts.startTimeoutMs, request.timeoutMs ?? Infinity);
    this.#timer.arm(limit, () => {
      this.#log.warn(
        `reload operation timed out (${limit} ms): killing the reload command (pid ${control.pid})`,
      );
      control.statusText ||= `the reload did not finish within ${limit} ms`;
      sendSignal(-control.pid, SIGKILL);
    });
    this.#log.info(
      `generation ${worker.generation}: reload (${reasons}): started ${command.path}'s reload ` +
        `command as pid ${control.pid}; pid ${worker.pid} serves on`,
    );
  }

  /**
   * MAINPID= from the main or the control process: `pid` becomes the main process if it is
   * our child (a subreaper's, re-parented to us: the only processes we can follow and reap).
   * systemd also accepts a process of the unit's cgroup that is not its child.
   */
  #onMainPid(pid: number, sender: number): void {
    const old = this.#worker;
    const state = this.#state;
    const refuse = (why: string) =>
      this.#log.warn(`notify: MAINPID=${pid} refused (sent by pid ${sender}): ${why}`);
    if (old === null || !["starting", "ready", "reloading"].includes(state)) {
      return refuse(`the worker is ${state}`);
    }
    if (pid === old.pid) return;
    const stat = readProcStat(pid);
    if (stat === null || stat.ppid !== Deno.pid) {
      return refuse(stat === null ? "no such process" : `not a child of the supervisor`);
    }
    let pidfd: number;
    try {
      pidfd = pidfdOpen(pid);
    } catch (err) {
      return refuse(describeError(err));
    }
    const next: Worker = {
      pid,
      pidfd,
      pgid: stat.pgrp,
      generation: ++this.#generation,
      command: this.#control?.command ?? old.command,
      carried: 0,
      spawnedAt: this.#control?.startedAt ?? performance.now(),
    };
    this.#restarts++;
    if (old.pidfd >= 0) this.#replaced.add(old);
    this.#mainExit = null;
    this.#worker = next;
    this.#watch(next);
    this.#result = "success";
    this.#watchdogOverrideUsec = null;
    if (state === "ready") this.#armWatchdog();
    this.#log.info(
      `generation ${next.generation}: started pid ${pid} as the main process (MAINPID= from ` +
        `pid ${sender}), replacing pid ${old.pid}`,
    );
  }

  /** The control process exited: the reload is over, a success or not. */
  #onControlExit(): void {
    const control = this.#control;
    if (control === null) return;
    // A MAINPID= it sent is handled before its exit, as systemd reads notify first.
    this.#ctx.drainNotify();
    const status = reapPidfd(control.pidfd);
    if (status === null) return;
    this.#ctx.loop.remove(control.pidfd);
    closeFd(control.pidfd);
    this.#control = null;
    this.#timer.cancel();
    const worker = this.#worker!;
    const isSwitched = worker.pid !== control.mainAtStart;
    const reasons = control.request.reasons.join("; ");
    const isSuccess = status.code === 0;
    if (!isSwitched) sendSignal(-control.pid, SIGKILL); // what it started and left behind
    if (isSuccess && isSwitched) {
      this.#command = control.command;
      if (this.#pendingCommand === control.command) this.#pendingCommand = null;
    }
    const mainExit = this.#mainExit;
    if (mainExit !== null) {
      this.#mainExit = null;
      settleRequest(
        control.request,
        Promise.reject(new SupervisorError("the worker exited during the reload")),
      );
      return this.#workerGone(mainExit);
    }
    this.#moveTo("ready");
    if (isSuccess) {
      const ms = Math.round(performance.now() - control.startedAt);
      if (isSwitched) this.#lastHandoffMs = ms;
      const status = this.#statusText ? `; status: ${this.#statusText}` : "";
      this.#log.info(
        `generation ${worker.generation} ready: pid ${worker.pid}, ` +
          (isSwitched ? `took over from pid ${control.mainAtStart}` : "reloaded") +
          ` in ${ms} ms (reload: ${reasons})${status}`,
      );
      const { pid, generation } = worker;
      settleRequest(control.request, Promise.resolve({ ok: true, pid, generation, handoffMs: ms }));
    } else {
      const why = control.statusText.replace(/^reload failed: /, "") ||
        `the reload command ${describeExit(status)}`;
      this.#log.warn(
        `reload (${reasons}) refused, generation ${worker.generation} (pid ${worker.pid}) ` +
          `goes on serving: ${why}`,
      );
      settleRequest(control.request, Promise.reject(new RestartRefused(`not reloaded: ${why}`)));
    }
    if (this.#afterExit === "stop") {
      this.#afterExit = null;
      return this.requestStop();
    }
    this.#afterReady();
  }

  /** STOPPING=1 from a running worker: it stops on its own (service_enter_stop_by_notify). */
  #onStopping(): void {
    if (this.#state !== "ready") return;
    this.#log.info(`generation ${this.#generation}: the worker is stopping (STOPPING=1)`);
    this.#watchdog.cancel();
    this.#moveTo("stopping");
    this.#timer.arm(this.#opts.stopTimeoutMs, () => this.#onStopTimeout());
  }

  #sendStop(signal: number, why: "restart" | "stop" | "start timeout" | "watchdog"): void {
    const worker = this.#worker!;
    if (why === "restart") this.#stopSentAt = performance.now();
    const name = signal === SIGABRT ? "SIGABRT" : "SIGTERM";
    this.#log.info(`generation ${worker.generation}: ${name} to pid ${worker.pid} (${why})`);
    sendSignal(worker.pid, signal);
    this.#watchdog.cancel();
    this.#moveTo("stopping");
    this.#timer.arm(this.#opts.stopTimeoutMs, () => this.#onStopTimeout());
  }

  #onStartTimeout(): void {
    if (this.#state !== "starting") return;
    this.#log.warn(
      `generation ${this.#generation}: no READY=1 within ${this.#opts.startTimeoutMs} ms`,
    );
    this.#result = "timeout";
    this.#sendStop(SIGTERM, "start timeout");
  }

  #onStopTimeout(): void {
    const worker = this.#worker;
    if (worker === null || this.#state !== "stopping") return;
    this.#log.warn(
      `generation ${worker.generation}: pid ${worker.pid} still runs ` +
        `${this.#opts.stopTimeoutMs} ms after being asked to stop (stop timeout): SIGKILL`,
    );
    if (this.#result === "success") this.#result = "timeout";
    sendSignal(worker.pid, SIGKILL);
    sendSignal(-worker.pid, SIGKILL);
    this.#moveTo("killing");
    this.#timer.arm(this.#opts.stopTimeoutMs, () => {
      this.#log.error(`pid ${worker.pid} is still there after SIGKILL: no longer waiting for it`);
      this.#workerGone({ code: null, signal: SIGKILL });
    });
  }

  /** EXTEND_TIMEOUT_USEC=: the start/stop deadline and the watchdog move to ≥ now + usec. */
  #onExtendTimeout(usec: number): void {
    const at = performance.now() + usec / 1000;
    if (this.#state === "starting" || this.#state === "stopping" || this.#state === "killing") {
      this.#timer.extendTo(at);
    }
    this.#watchdog.extendTo(at);
    this.#log.debug(`notify: timeout extended to at least ${ms(usec / 1000)} ms from now`);
  }

  #armWatchdog(): void {
    const usec = this.#watchdogOverrideUsec ?? this.#opts.watchdogUsec ?? 0;
    if (usec === 0) return this.#watchdog.cancel();
    const limit = `watchdog timeout (limit ${usec / 1000} ms)!`;
    this.#watchdog.arm(usec / 1000, () => this.#onWatchdog(limit));
  }

  /** WatchdogSignal= (SIGABRT), then SIGKILL after the stop timeout (TimeoutAbortSec=). */
  #onWatchdog(message: string): void {
    const state = this.#state;
    if (this.#worker === null || !["ready", "starting", "reloading"].includes(state)) return;
    this.#log.error(`generation ${this.#generation}: ${message}`);
    if (this.#result === "success") this.#result = "watchdog";
    this.#sendStop(SIGABRT, "watchdog");
  }

  #finish(state: "stopped" | "failed", code: number, reason: string): void {
    this.#moveTo(state);
    this.#timer.cancel();
    this.#watchdog.cancel();
    const err = new SupervisorError(
      state === "stopped" ? "the supervisor stopped" : `the supervisor gave up (${reason})`,
    );
    this.#waiters.rejectAll(err);
    this.#reloads.rejectAll(err);
    // No cgroup: what is left of replaced main processes goes now (the final SIGKILL).
    for (const w of this.#replaced) {
      sendSignal(-w.pgid, SIGKILL);
      this.#closePidfd(w);
    }
    this.#replaced.clear();
    this.#ctx.onFinished(state, code, reason);
  }
}
