/**
 * @module
 * Drives the worker's state machine (worker_state.ts) the way systemd drives a `Type=notify`
 * service: spawn with the listeners and the store, READY=1 gating under the start timeout,
 * SIGTERM → stop timeout → SIGKILL, STOPPING=1, the watchdog (SIGABRT), EXTEND_TIMEOUT_USEC=,
 * automatic restart on failure under the start limit, and restart requests (merged while a
 * worker starts or stops, so a burst of them costs one restart). Every state change goes
 * through `#moveTo`. Invariant: at most one worker process exists; the next is spawned only
 * after the previous one has been reaped.
 *
 * Owns the worker's pidfd (closed when the worker is reaped) and its timers. Borrows the loop,
 * the store and the notify socket from the supervisor, which closes them after `onFinished`.
 */
import { describeError } from "../errors.ts";
import type { EventLoop } from "../io/mod.ts";
import type { Logger } from "../log.ts";
import { closeFd, EPOLLIN, type ExitStatus, reapPidfd, sendSignal, SIGNALS } from "../sys/mod.ts";
import type { RestartReply } from "./control.ts";
import { SupervisorError } from "./errors.ts";
import type { FdStore } from "./fdstore.ts";
import type { NotifyTarget } from "./notify_handler.ts";
import { checkCommand, type ResolvedOptions, type WorkerCommand } from "./options.ts";
import { ReadyWaiters } from "./ready_waiters.ts";
import { Deadline, StartLimiter } from "./timers.ts";
import {
  describeExit,
  exitCodeFor,
  isCleanExit,
  type ServiceResult,
  spawnWorker,
} from "./worker.ts";
import { checkMove, isTerminal, type WorkerState } from "./worker_state.ts";

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
      warnOnce: (key, message) => {
        if (this.#warned.has(key)) return;
        this.#warned.add(key);
        this.#log.warn(message);
      },
      onReady: () => this.#onReady(),
      onStopping: () => this.#onStopping(),
      onStatus: (text) => this.#statusText = text,
      onErrno: (n) => this.#statusErrno = n,
      onExtendTimeout: (usec) => this.#onExtendTimeout(usec),
      onWatchdogPing: () => this.#state === "ready" && this.#armWatchdog(),
      onWatchdogTrigger: () =>
        this.#onWatchdog(`watchdog request (last status: ${this.#statusText || "<unset>"})!`),
      onWatchdogUsec: (usec) => {
        this.#watchdogOverrideUsec = usec;
        if (this.#state === "ready") this.#armWatchdog();
      },
    };
  }

  get state(): WorkerState {
    return this.#state;
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
    } else if (state === "starting" && !isPreempting) {
      // Merged into one restart after READY=1, as requests are while stopping: stopping a
      // worker mid-start for each request of a burst (SIGHUPs, file changes) spends the start
      // limit and ends the service. systemd 252 would stop it; the supervisor waits.
      this.#isRestartQueued = true;
    } else {
      this.#afterExit = "restart";
      if (state === "ready" || state === "starting") this.#sendStop(SIGTERM, "restart");
    }
    return ready;
  }

  /** SIGTERM to the worker (if any); `onFinished` follows once it is gone. */
  requestStop(): void {
    if (isTerminal(this.#state) || this.#afterExit === "stop") return;
    this.#afterExit = "stop";
    this.#isRestartQueued = false;
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

  /** The worker's pidfd became readable: drain the notify socket first, then reap. */
  #onPidfd(): void {
    const worker = this.#worker;
    if (worker === null) return;
    // systemd gives its notify socket priority over SIGCHLD, so no message is lost to an exit.
    this.#ctx.drainNotify();
    const status = reapPidfd(worker.pidfd);
    if (status !== null) this.#workerGone(status);
  }

  #moveTo(next: WorkerState): void {
    checkMove(this.#state, next);
    this.#log.debug(`worker: ${this.#state} → ${next}`);
    this.#state = next;
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
    const worker: Worker = { pid: 0, pidfd: -1, generation, command, carried: 0, spawnedAt };
    this.#worker = worker;
    try {
      const { notifyPath: notifySocket } = this.#ctx;
      const watchdogUsec = this.#opts.watchdogUsec;
      Object.assign(worker, spawnWorker({ command, fds, notifySocket, watchdogUsec }));
    } catch (err) {
      this.#log.error(`generation ${generation}: ${describeError(err)}`);
      // systemd reports a failed exec as the main process exiting with 203/EXEC.
      return this.#workerGone({ code: 203, signal: null });
    }
    worker.carried = stored.length;
    this.#ctx.loop.add(worker.pidfd, EPOLLIN, { onEvent: () => this.#onPidfd() });
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
    if (worker.pidfd >= 0) {
      this.#ctx.loop.remove(worker.pidfd);
      closeFd(worker.pidfd);
    }
    // No cgroup here: what the worker left in its process group goes now (KillMode=mixed's
    // final SIGKILL, without its grace period).
    if (worker.pid > 0 && sendSignal(-worker.pid, SIGKILL)) {
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
    if (this.#isRestartQueued) {
      this.#isRestartQueued = false;
      this.#afterExit = "restart";
      this.#sendStop(SIGTERM, "restart");
    }
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
    if (this.#worker === null || (this.#state !== "ready" && this.#state !== "starting")) return;
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
    this.#ctx.onFinished(state, code, reason);
  }
}
