/**
 * @module
 * The embedded supervisor's object: opens what a service manager holds for its service (the
 * epoll loop, the notify socket, the fdstore, the control socket, the file watcher), hands
 * the worker's life to {@linkcode WorkerDriver} and requested restarts through the check of
 * {@linkcode RestartGate} (when `beforeRestart` is given), and closes everything when that
 * life ends.
 * Stage 1 of a stop ends with the worker reaped and the store flushed (`stopWorker()`), stage 2
 * with every resource closed (`done`). Owns all of the above and every stored fd; never owns
 * the listeners, which stay the caller's.
 */
import { describeError } from "../errors.ts";
import { EventLoop } from "../io/mod.ts";
import type { Logger } from "../log.ts";
import { becomeChildSubreaper, closeFd, EPOLLIN } from "../sys/mod.ts";
import {
  type ControlHandler,
  ControlServer,
  type RestartReply,
  type StatusReply,
} from "./control.ts";
import { SupervisorError } from "./errors.ts";
import { FdStore } from "./fdstore.ts";
import { dispatchNotify } from "./notify_handler.ts";
import { NotifySocket } from "./notify_socket.ts";
import {
  type ResolvedOptions,
  resolveOptions,
  type RestartHow,
  type SupervisorOptions,
  type WorkerCommand,
} from "./options.ts";
import { RestartGate, RestartRefused } from "./restart_gate.ts";
import { FileWatcher } from "./watch.ts";
import { WorkerDriver } from "./worker_driver.ts";
import type { WorkerState } from "./worker_state.ts";

/** The supervisor. `await start()`, then `restart()` / `stop()`; `done` gives the exit status. */
export class Supervisor implements ControlHandler {
  readonly #opts: ResolvedOptions;
  readonly #log: Logger;
  readonly #stopped = Promise.withResolvers<void>();
  readonly #done = Promise.withResolvers<number>();
  /** The state before a driver exists, or after opening failed. */
  #ownState: "idle" | "stopped" | "failed" = "idle";
  #driver: WorkerDriver | null = null;
  #loop: EventLoop | null = null;
  #loopDone: Promise<void> = Promise.resolve();
  #notify: NotifySocket | null = null;
  #store: FdStore | null = null;
  #control: ControlServer | null = null;
  #watcher: FileWatcher | null = null;
  #gate: RestartGate | null = null;

  /** Validates the options (throws {@linkcode SupervisorError}); opens nothing yet. */
  constructor(opts: SupervisorOptions) {
    this.#opts = resolveOptions(opts);
    this.#log = this.#opts.log;
  }

  get state(): WorkerState {
    return this.#driver?.state ?? this.#ownState;
  }

  /** The worker command in force (a restart request's command once its worker is ready). */
  get command(): WorkerCommand {
    return this.#driver?.command ?? this.#opts.worker;
  }

  /** The path of the notify socket (`NOTIFY_SOCKET`), once started. */
  get notifySocket(): string | null {
    return this.#notify?.path ?? null;
  }

  /** Resolves with the supervisor's exit status once it has finished and closed everything. */
  get done(): Promise<number> {
    return this.#done.promise;
  }

  /**
   * Opens the loop, the notify socket, the control socket and the watcher, and starts the
   * first worker. Resolves when a worker sent READY=1 (after automatic restarts, if any);
   * rejects when the supervisor gives up first, or cannot open what it needs.
   */
  async start(): Promise<RestartReply> {
    if (this.#ownState !== "idle" || this.#driver !== null) {
      throw new SupervisorError("the supervisor was already started");
    }
    try {
      this.#open();
      const { controlSocket, watch } = this.#opts;
      if (controlSocket) this.#control = await ControlServer.open(controlSocket, this);
      if (typeof watch === "function" || watch.length > 0) {
        // A list to ask for is asked for beside the first start, not before it.
        this.#watcher = FileWatcher.start({
          paths: typeof watch === "function" ? [] : watch,
          debounceMs: this.#opts.watchDebounceMs,
          onChange: (changed) => this.#onWatch(changed),
          log: this.#log,
        });
        if (typeof watch === "function") this.#refreshWatch();
      }
    } catch (err) {
      this.#onFinished("failed", 1, "cannot start");
      await this.#done.promise;
      throw err;
    }
    this.#driver = new WorkerDriver({
      opts: this.#opts,
      loop: this.#loop!,
      store: this.#store!,
      notifyPath: this.#notify!.path,
      drainNotify: () => this.#drainNotify(),
      onFinished: (state, code, reason) => this.#onFinished(state, code, reason),
    });
    const { beforeRestart } = this.#opts;
    if (beforeRestart !== undefined) {
      const driver = this.#driver;
      this.#gate = new RestartGate({
        check: beforeRestart,
        restart: (reason, isPreempting) => driver.restart(undefined, reason, isPreempting),
        onRefused: (reason, err) => {
          const { generation, pid } = driver.snapshot();
          this.#log.warn(
            `restart (${reason}) refused, generation ${generation} (pid ${pid ?? "-"}) ` +
              `goes on serving: ${describeError(err)}`,
          );
        },
      });
    }
    return this.#driver.begin();
  }

  /**
   * `systemctl restart`: SIGTERM to the worker, wait for its exit (stop timeout, then SIGKILL),
   * start the next one with the store. With `command`, the next worker runs it, and it stays
   * in force only if that worker sends READY=1 (else the previous command does: an upgrade
   * with rollback). Without `command`, `beforeRestart` is asked first: when it refuses, this
   * rejects with {@linkcode RestartRefused} and the running worker goes on. Resolves when the
   * new worker is ready; rejects when it fails to start or the supervisor stops.
   */
  restart(
    command?: WorkerCommand,
    reason = "requested",
    how: RestartHow = {},
  ): Promise<RestartReply> {
    if (this.#driver === null) {
      return Promise.reject(new SupervisorError(`cannot restart: the supervisor is not running`));
    }
    const { isChecked = true, isPreempting = false } = how;
    const done = command === undefined && this.#gate !== null && isChecked
      ? this.#gate.request(reason, isPreempting)
      : this.#driver.restart(command, reason, isPreempting);
    // Whatever came of it, what to watch may have changed (imports added or removed).
    if (typeof this.#opts.watch === "function") {
      done.finally(() => this.#refreshWatch()).catch(() => {});
    }
    return done;
  }

  /**
   * `systemctl reload`: runs `reloadCommand` for `command` (or the one in force) as the control
   * process while the worker serves on; resolves when it exited 0 (with the main process then:
   * another one when it sent MAINPID=), rejects with {@linkcode RestartRefused} when it failed.
   * Requests made during a reload are served by one more reload after it. Without
   * `reloadCommand`, rejects: a reload is not applicable.
   */
  reload(command?: WorkerCommand, reason = "requested", timeoutMs?: number): Promise<RestartReply> {
    if (this.#driver === null) {
      return Promise.reject(new SupervisorError(`cannot reload: the supervisor is not running`));
    }
    if (this.#opts.reloadCommand === undefined) {
      return Promise.reject(
        new SupervisorError("reload is not applicable: no reload command (ExecReload=)"),
      );
    }
    const done = this.#driver.reload(command, reason, timeoutMs);
    if (typeof this.#opts.watch === "function") {
      done.finally(() => this.#refreshWatch()).catch(() => {});
    }
    return done;
  }

  /** Whether reloads are possible (`reloadCommand`): SIGHUP and `watch` then reload. */
  get canReload(): boolean {
    return this.#opts.reloadCommand !== undefined;
  }

  /** Stops the worker, flushes the store, closes everything; resolves with the exit status. */
  stop(): Promise<number> {
    this.#requestStop();
    return this.#done.promise;
  }

  /** Stage 1 of {@linkcode stop}: resolves once the worker is gone and the store flushed. */
  stopWorker(): Promise<void> {
    this.#requestStop();
    return this.#stopped.promise;
  }

  /** What `{"cmd":"status"}` answers. */
  status(): StatusReply {
    const snap = this.#driver?.snapshot();
    return {
      ok: true,
      generation: snap?.generation ?? 0,
      pid: snap?.pid ?? null,
      state: this.state,
      status: snap?.status ?? "",
      storedFds: this.#store?.summary() ?? [],
      lastHandoffMs: snap?.lastHandoffMs ?? null,
      restarts: snap?.restarts ?? 0,
    };
  }

  /** The last ERRNO= of the current worker (0 when none). */
  get statusErrno(): number {
    return this.#driver?.snapshot().statusErrno ?? 0;
  }

  #requestStop(): void {
    if (this.#driver !== null) return this.#driver.requestStop();
    if (this.#ownState === "idle") this.#onFinished("stopped", 0, "stopped");
  }

  #open(): void {
    const loop = EventLoop.create();
    loop.onError = (err) => this.#log.error(`supervisor: ${describeError(err)}`);
    this.#loop = loop;
    // Orphans of our workers come to us, as to a service manager: a reload command's next
    // process is re-parented here, so we can follow and reap it as the main process.
    if (this.#opts.reloadCommand !== undefined) becomeChildSubreaper();
    try {
      this.#notify = NotifySocket.open();
    } catch (err) {
      throw new SupervisorError("cannot open the notify socket", { cause: err });
    }
    this.#store = new FdStore({ max: this.#opts.fdStoreMax, loop, log: this.#log });
    loop.add(this.#notify.fd, EPOLLIN, { onEvent: () => this.#drainNotify() });
    this.#loopDone = loop.run().catch((err) => {
      this.#log.error(`supervisor: the event loop failed: ${describeError(err)}`);
    });
  }

  #drainNotify(): void {
    for (;;) {
      const notify = this.#notify, driver = this.#driver;
      if (notify === null) return;
      const got = notify.receive();
      if (got === "again") return;
      if ("refused" in got) {
        this.#log.warn(`notify: message from pid ${got.pid ?? "?"} ignored: ${got.refused}`);
      } else if (driver === null) {
        // Before the first spawn nobody may talk to us (NotifyAccess=main without a main pid).
        for (const fd of got.fds) closeFd(fd);
        this.#log.warn(`notify: message from pid ${got.pid} ignored: no worker is running`);
      } else dispatchNotify(got, driver.target);
    }
  }

  #onWatch(paths: string[]): void {
    const shown = paths.slice(0, 3).join(", ") + (paths.length > 3 ? ", …" : "");
    const reason = `changed: ${shown}`;
    const done = this.canReload ? this.reload(undefined, reason) : this.restart(undefined, reason);
    done.catch((err) => {
      // A refusal was logged with its reason; the next change is the next chance.
      if (!(err instanceof RestartRefused)) {
        this.#log.warn(`watch: the restart failed: ${describeError(err)}`);
      }
    });
  }

  /** The `watch` function's list; null (and a warning) when it failed. */
  async #watchList(): Promise<string[] | null> {
    const list = this.#opts.watch as () => Promise<string[]>;
    try {
      return await list();
    } catch (err) {
      this.#log.warn(`watch: cannot tell which files to watch: ${describeError(err)}`);
      return null;
    }
  }

  async #refreshWatch(): Promise<void> {
    const paths = await this.#watchList();
    if (paths !== null) this.#watcher?.setPaths(paths);
  }

  /** The worker's life ended (or never began): flush the store, then close everything. */
  #onFinished(state: "stopped" | "failed", code: number, reason: string): void {
    if (this.#driver === null) this.#ownState = state;
    this.#gate?.close();
    this.#store?.flush();
    // A failure was logged, with its reason, where it happened.
    if (state === "stopped") this.#log.info("supervisor stopped");
    else this.#log.debug(`supervisor failed (${reason})`);
    this.#stopped.resolve();
    this.#teardown()
      .catch((err) => this.#log.error(`supervisor: ${describeError(err)}`))
      .finally(() => this.#done.resolve(code));
  }

  async #teardown(): Promise<void> {
    const { control, watcher, loop, notify } = this.#takeResources();
    await control?.close();
    await watcher?.close();
    if (loop !== null) {
      loop.stop();
      await this.#loopDone;
      if (notify !== null) loop.remove(notify.fd);
      loop.dispose();
    }
    notify?.close();
  }

  #takeResources() {
    const taken = {
      control: this.#control,
      watcher: this.#watcher,
      loop: this.#loop,
      notify: this.#notify,
    };
    this.#control = this.#watcher = null;
    this.#loop = null;
    this.#notify = null;
    return taken;
  }
}
