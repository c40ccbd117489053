/**
 * @module
 * The epoll event loop: one epoll fd, a table of who handles each fd, and a run loop that
 * polls synchronously (timeout 0) while there is work and awaits a nonblocking epoll_wait
 * (a thread hop, ~25–60 µs) only when there is none. It yields to Deno's event loop at least
 * every few milliseconds under load so timers, signals and async handlers run. It owns the
 * epoll fd and an eventfd used to wake it; it never owns the fds it watches.
 */
import {
  drainEventFd,
  E,
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLL_CTL_MOD,
  EPOLL_DATA_OFFSET,
  EPOLL_EVENT_SIZE,
  EPOLLIN,
  errno,
  eventFd,
  intervalTimerFd,
  libc,
  signalEventFd,
  SysError,
} from "../sys/mod.ts";

/** Something that reacts to readiness of one fd (one handler may serve many: `fd` says which). */
export interface IoHandler {
  onEvent(events: number, fd: number): void;
}

const MAX_EVENTS = 1024;
/** Longest stretch of busy polling before Deno's own event loop gets a turn. */
const YIELD_EVERY_MS = 4;
/** struct timespec values: how long a busy loop may block for its next event (see `spinFor`). */
function timespec(ns: bigint): Uint8Array {
  return new Uint8Array(new BigInt64Array([0n, ns]).buffer);
}

/**
 * How long a busy loop waits in epoll for its next event before it hands the wait to another
 * thread and lets Deno's event loop run (`SPIN_NONE`: at once). Longer spins cost fewer thread
 * hops (a hop: ~25–60 µs of CPU across two threads) but hold back whatever waits in Deno's own
 * loop (timers, the app's fetches and files) for as long.
 */
export const SPIN_NONE = null, SPIN_SHORT = timespec(200_000n), SPIN_LONG = timespec(1_000_000n);
export type Spin = typeof SPIN_NONE | Uint8Array;

/** The epoll loop. Create one per process with {@linkcode EventLoop.create}. */
export class EventLoop {
  readonly #epfd: number;
  readonly #wakeFd: number;
  readonly #events = new Uint8Array(EPOLL_EVENT_SIZE * MAX_EVENTS);
  readonly #eventsView = new DataView(this.#events.buffer);
  readonly #ctlBuf = new Uint8Array(EPOLL_EVENT_SIZE);
  readonly #ctlView = new DataView(this.#ctlBuf.buffer);
  readonly #handlers: (IoHandler | undefined)[] = [];
  #pendingClose: number[] = [];
  #isDispatching = false;
  #isRunning = false;
  #isStopping = false;
  #isWaiting = false;
  #isBusy = false;
  #spinFor: () => Spin = () => SPIN_SHORT;
  #lastYield = 0;
  #yieldChannel: MessageChannel | null = null;
  #yieldResolve: (() => void) | null = null;
  #done: Promise<void> | null = null;
  #onError: (err: unknown) => void = (err) => {
    throw err;
  };

  private constructor(epfd: number, wakeFd: number) {
    this.#epfd = epfd;
    this.#wakeFd = wakeFd;
  }

  /** Opens the epoll fd and the wake eventfd. Call {@linkcode close} to release them. */
  static create(): EventLoop {
    const epfd = libc.epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) throw new SysError("epoll_create1", errno());
    const loop = new EventLoop(epfd, eventFd());
    loop.#ctl(EPOLL_CTL_ADD, loop.#wakeFd, EPOLLIN);
    return loop;
  }

  /**
   * Decides, each time a busy loop runs out of events, how long it may wait for the next one
   * in epoll (the default: `SPIN_SHORT`).
   */
  set spinFor(fn: () => Spin) {
    this.#spinFor = fn;
  }

  /** Called with anything a handler throws; by default the loop rethrows (and stops). */
  set onError(fn: (err: unknown) => void) {
    this.#onError = fn;
  }

  /** Starts watching `fd` for `events` (EPOLL* bits); `handler` gets each readiness report. */
  add(fd: number, events: number, handler: IoHandler): void {
    this.#ctl(EPOLL_CTL_ADD, fd, events);
    this.#handlers[fd] = handler;
  }

  /** Changes the events watched on `fd`. */
  modify(fd: number, events: number): void {
    this.#ctl(EPOLL_CTL_MOD, fd, events);
  }

  /**
   * Stops watching `fd`. Always call this before the fd is closed or given away: epoll follows
   * the open file description, which another process (or the fdstore) may still hold.
   */
  remove(fd: number): void {
    if (this.#handlers[fd] === undefined) return;
    this.#handlers[fd] = undefined;
    if (libc.epoll_ctl(this.#epfd, EPOLL_CTL_DEL, fd, this.#ctlBuf) < 0) {
      const code = errno();
      if (code !== E.ENOENT && code !== E.EBADF) throw new SysError("epoll_ctl", code, "DEL");
    }
  }

  /**
   * Stops dispatching `fd` without telling the kernel: for the fds a handoff takes out just
   * before the loop is disposed, where a DEL each (a syscall, microseconds here) would cost more
   * than the one close of the epoll fd that drops them all. An event that still comes for it
   * removes it then. Only when the loop is disposed before `fd` is closed or its number reused.
   */
  forget(fd: number): void {
    this.#handlers[fd] = undefined;
  }

  /**
   * Stops watching `fd` and closes it once the current batch of events is dispatched, so a
   * number reused by accept4 in the same batch is never confused with the closed one.
   */
  close(fd: number): void {
    this.remove(fd);
    if (this.#isDispatching) this.#pendingClose.push(fd);
    else libc.close(fd);
  }

  /**
   * Calls `fn` every `ms` from the loop itself (a timerfd among the fds it watches), not from
   * Deno's timers: the first setTimeout/setInterval of a Deno 2.9 process loads its Node timers
   * (~10–40 ms of a start, measured), which the engine does not need to serve. Returns the
   * function that stops it (and closes the timerfd). What `fn` throws goes to `onError`.
   */
  every(ms: number, fn: () => void): () => void {
    const fd = intervalTimerFd(ms);
    this.add(fd, EPOLLIN, {
      onEvent: () => {
        drainEventFd(fd);
        fn();
      },
    });
    return () => {
      if (!this.has(fd)) return;
      this.close(fd);
    };
  }

  /**
   * Resolves after `ms` (a one-shot {@linkcode every}; at once for `ms` ≤ 0), for the waits of
   * a handoff or a drain, which must not pay for Deno's first timer either (a loop that is not
   * running uses Deno's timer). `cancel` stops it; the promise then never resolves.
   */
  sleep(ms: number): { promise: Promise<void>; cancel(): void } {
    if (ms <= 0) return { promise: Promise.resolve(), cancel: () => {} };
    const { promise, resolve } = Promise.withResolvers<void>();
    if (!this.#isRunning) {
      const timer = setTimeout(resolve, ms);
      return { promise, cancel: () => clearTimeout(timer) };
    }
    const stop = this.every(ms, () => {
      stop();
      resolve();
    });
    return { promise, cancel: stop };
  }

  /** Whether the loop is watching `fd`. */
  has(fd: number): boolean {
    return this.#handlers[fd] !== undefined;
  }

  /** Runs until {@linkcode stop}. Resolves once the loop has stopped. */
  run(): Promise<void> {
    if (this.#done) return this.#done;
    this.#isRunning = true;
    const mc = new MessageChannel();
    mc.port1.onmessage = () => this.#yieldResolve?.();
    this.#yieldChannel = mc;
    this.#done = this.#runLoop().finally(() => {
      this.#isRunning = false;
      mc.port1.close();
      mc.port2.close();
      this.#yieldChannel = null;
    });
    return this.#done;
  }

  /** Asks the loop to stop after the current batch; wakes it if it is waiting. */
  stop(): void {
    this.#isStopping = true;
    if (this.#isWaiting) signalEventFd(this.#wakeFd);
  }

  /** Releases the epoll fd and the eventfd. The loop must not be running. */
  dispose(): void {
    libc.close(this.#epfd);
    libc.close(this.#wakeFd);
  }

  get isRunning(): boolean {
    return this.#isRunning;
  }

  async #runLoop(): Promise<void> {
    const events = this.#events;
    while (!this.#isStopping) {
      // Under load the next event is microseconds away: wait for it here rather than pay the
      // thread hop of the nonblocking wait below (epoll_pwait2 takes a ns timeout, and returns
      // at once when events are ready: one syscall a batch).
      const spin = this.#isBusy ? this.#spinFor() : SPIN_NONE;
      let n = spin !== SPIN_NONE
        ? libc.epoll_pwait2(this.#epfd, events, MAX_EVENTS, spin, null)
        : libc.epoll_wait(this.#epfd, events, MAX_EVENTS, 0);
      if (n === 0) this.#isBusy = false;
      if (n === 0) {
        this.#isWaiting = true;
        n = await libc.epoll_wait_async(this.#epfd, events, MAX_EVENTS, -1);
        this.#isWaiting = false;
        this.#lastYield = performance.now();
      } else if (n > 0) {
        this.#isBusy = true;
        const now = performance.now();
        if (now - this.#lastYield > YIELD_EVERY_MS) {
          this.#lastYield = now;
          await this.#macrotask();
        }
      }
      if (n < 0) {
        const code = errno();
        if (code === E.EINTR) continue;
        throw new SysError("epoll_wait", code);
      }
      this.#dispatch(n);
      // Let promise reactions (async handlers, stream reads) run between batches.
      await undefined;
    }
  }

  #dispatch(n: number): void {
    const view = this.#eventsView;
    this.#isDispatching = true;
    try {
      for (let i = 0; i < n; i++) {
        const base = i * EPOLL_EVENT_SIZE;
        const ev = view.getUint32(base, true);
        const fd = view.getInt32(base + EPOLL_DATA_OFFSET, true);
        if (fd === this.#wakeFd) {
          drainEventFd(fd);
          continue;
        }
        const handler = this.#handlers[fd];
        if (handler === undefined) {
          // Forgotten (or removed earlier in this batch): stop its events for good.
          libc.epoll_ctl(this.#epfd, EPOLL_CTL_DEL, fd, this.#ctlBuf);
          continue;
        }
        try {
          handler.onEvent(ev, fd);
        } catch (err) {
          this.#onError(err);
        }
      }
    } finally {
      this.#isDispatching = false;
      if (this.#pendingClose.length > 0) {
        for (const fd of this.#pendingClose) libc.close(fd);
        this.#pendingClose = [];
      }
    }
  }

  /** One turn of Deno's event loop (timers, signals, I/O callbacks), ~7 µs. */
  #macrotask(): Promise<void> {
    return new Promise((resolve) => {
      this.#yieldResolve = resolve;
      this.#yieldChannel!.port2.postMessage(null);
    });
  }

  #ctl(op: number, fd: number, events: number): void {
    this.#ctlView.setUint32(0, events, true);
    this.#ctlView.setInt32(EPOLL_DATA_OFFSET, fd, true);
    if (libc.epoll_ctl(this.#epfd, op, fd, this.#ctlBuf) < 0) {
      throw new SysError("epoll_ctl", errno(), `op ${op} fd ${fd}`);
    }
  }
}
