/**
 * @module
 * The running process's side of a warm takeover (docs/design.md, "Warm reload"): once ready,
 * the worker listens on `$RUNTIME_DIRECTORY/takeover.PID.sock` (SOCK_SEQPACKET, mode 0600, in
 * a directory only the service's user can reach). A next process that connects — the same
 * uid (or root) and, under systemd, the same cgroup, so a process of the same unit — says
 * hello and gets the listeners (the worker keeps serving on them); once it has loaded its app
 * it asks to take over, and the worker's serve loop (serving.ts) answers with the bundle. One
 * takeover at a time: a second next process is refused while the first one takes over; one
 * that comes while the first is still loading means the manager gave up on that one (reloads
 * run one at a time, and a timed-out reload command is killed, not its child): the first is
 * ended (SIGKILL: it holds nothing yet) and the second goes on.
 *
 * Owns the listening socket and its file (removed on close) and every connection until it
 * hands one to the serve loop as a {@linkcode TakeoverRequest}, which then owns it.
 */
import { describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import {
  accept,
  closeFd,
  listenSeqpacket,
  peerCredentials,
  pipe,
  pollFds,
  POLLIN,
  sendSignal,
  SIGNALS,
  writeAll,
} from "../sys/mod.ts";
import { receiveTakeover, sendTakeover, TakeoverError } from "../handoff/mod.ts";

/** Where the worker with `pid` offers takeovers, in `runtimeDir`. */
export function takeoverSocketPath(runtimeDir: string, pid: number): string {
  return `${runtimeDir}/takeover.${pid}.sock`;
}

/** The service's runtime directory (`RuntimeDirectory=`; the first of several), or null. */
export function runtimeDirectory(env: { get(k: string): string | undefined } = Deno.env) {
  const dirs = env.get("RUNTIME_DIRECTORY");
  return dirs ? dirs.split(":")[0] || null : null;
}

/** A next process that asked to take over: its connection (the receiver's to close) and pid. */
export interface TakeoverRequest {
  fd: number;
  pid: number;
}

/** What the host offers a next process: every listener, named as the next process must see it. */
export interface TakeoverOffer {
  generation: number;
  listeners: { name: string; fd: number }[];
  /** How many connections it serves now (the next process makes room for them). */
  connections: number;
}

/** Options for {@linkcode TakeoverHost.open}. */
export interface TakeoverHostOptions {
  runtimeDir: string;
  log: Logger;
  /** Asked at each hello: the offer, or why there is none now (a handoff under way). */
  offer(): TakeoverOffer | string;
}

const HELLO_TIMEOUT_MS = 5000;

/** The listening side of warm takeovers. */
export class TakeoverHost {
  readonly path: string;
  readonly #fd: number;
  readonly #opts: TakeoverHostOptions;
  readonly #wake: [number, number];
  readonly #requests: TakeoverRequest[] = [];
  #waiter: ((r: TakeoverRequest) => void) | null = null;
  /** The next process between hello and its end (`isTaking` once it asked to take over). */
  #busy: { pid: number; isTaking: boolean } | null = null;
  #isClosed = false;

  private constructor(path: string, fd: number, opts: TakeoverHostOptions) {
    this.path = path;
    this.#fd = fd;
    this.#opts = opts;
    this.#wake = pipe({ isNonBlocking: true });
    this.#acceptLoop().catch((err) => {
      if (!this.#isClosed) opts.log.warn(`takeover socket: ${describeError(err)}`);
    });
  }

  /**
   * Listens for takeovers. Returns null (and says why at debug level) when there is no runtime
   * directory to listen in, or the socket cannot be opened: warm reloads then fail with that
   * reason on the reload side, and cold restarts work as before.
   */
  static open(opts: TakeoverHostOptions): TakeoverHost | null {
    const path = takeoverSocketPath(opts.runtimeDir, Deno.pid);
    try {
      Deno.removeSync(path);
    } catch {
      // Not there: the usual case.
    }
    try {
      return new TakeoverHost(path, listenSeqpacket(path), opts);
    } catch (err) {
      opts.log.warn(`no warm takeover: cannot listen on ${path}: ${describeError(err)}`);
      return null;
    }
  }

  /** Resolves with the next process that asked to take over. */
  nextRequest(): Promise<TakeoverRequest> {
    const queued = this.#requests.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve) => this.#waiter = resolve);
  }

  /** The takeover by `pid` is over (it failed, or this process is leaving): others may come. */
  release(pid: number): void {
    if (this.#busy?.pid === pid) this.#busy = null;
  }

  /** Stops listening and removes the socket file; connections not yet handed over are closed. */
  close(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    writeAll(this.#wake[1], new Uint8Array(1));
    try {
      Deno.removeSync(this.path);
    } catch {
      // Removed already.
    }
    for (const r of this.#requests.splice(0)) closeFd(r.fd);
  }

  async #acceptLoop(): Promise<void> {
    try {
      while (!this.#isClosed) {
        const [ready] = await pollFds([
          { fd: this.#fd, events: POLLIN },
          { fd: this.#wake[0], events: POLLIN },
        ], -1);
        if (this.#isClosed) break;
        if (ready === 0) continue;
        for (let fd = accept(this.#fd); typeof fd === "number"; fd = accept(this.#fd)) {
          this.#greet(fd).catch((err) => {
            this.#opts.log.warn(`takeover: ${describeError(err)}`);
          });
        }
      }
    } finally {
      closeFd(this.#fd);
      closeFd(this.#wake[0]);
      closeFd(this.#wake[1]);
    }
  }

  /** One next process: who it is, hello, offer, then its "take" (or it goes away). */
  async #greet(fd: number): Promise<void> {
    const { log } = this.#opts;
    let pid = 0;
    let isHandedOver = false;
    try {
      const who = peerCredentials(fd);
      pid = who.pid;
      const refusal = this.#refusalFor(who);
      const first = await receiveTakeover(fd, HELLO_TIMEOUT_MS);
      if (first === "closed") return;
      if (first.message.t !== "hello") throw new TakeoverError(`pid ${pid} did not say hello`);
      if (refusal === null && this.#busy !== null && !this.#busy.isTaking) {
        log.warn(
          `pid ${this.#busy.pid} was still loading when pid ${pid} came (its reload ended ` +
            `without it): ending it`,
        );
        sendSignal(this.#busy.pid, SIGNALS.SIGKILL);
        this.#busy = null;
      }
      const offer = refusal ??
        (this.#busy !== null
          ? `pid ${this.#busy.pid} is taking over already`
          : this.#isClosed
          ? "this process is leaving"
          : this.#opts.offer());
      if (typeof offer === "string") {
        log.warn(`takeover by pid ${pid} refused: ${offer}`);
        sendTakeover(fd, { t: "refuse", why: offer });
        return;
      }
      const busy: { pid: number; isTaking: boolean } = { pid, isTaking: false };
      this.#busy = busy;
      const names = offer.listeners.map((l) => l.name);
      const { generation, connections } = offer;
      sendTakeover(
        fd,
        { t: "offer", generation, listeners: names, connections },
        offer.listeners.map((l) => l.fd),
      );
      log.info(`pid ${pid} is loading the next version; serving on until it takes over`);
      // The next process loads its app now: as long as it takes (its manager's start timeout).
      const next = await receiveTakeover(fd, -1);
      if (next === "closed") {
        log.info(`pid ${pid} went away before taking over (it says why in its own log)`);
        return;
      }
      if (next.message.t !== "take") throw new TakeoverError(`pid ${pid} sent "${next.message.t}"`);
      if (this.#busy !== busy) throw new TakeoverError(`pid ${pid} came back too late`);
      busy.isTaking = true;
      isHandedOver = true;
      const request = { fd, pid };
      if (this.#waiter !== null) {
        const w = this.#waiter;
        this.#waiter = null;
        w(request);
      } else this.#requests.push(request);
    } finally {
      if (!isHandedOver) {
        closeFd(fd);
        this.release(pid);
      }
    }
  }

  /** Why `who` may not take over: another user, or (under systemd) another unit's process. */
  #refusalFor(who: { pid: number; uid: number }): string | null {
    const uid = Deno.uid();
    if (who.uid !== uid && who.uid !== 0) return `uid ${who.uid} is not this service's (${uid})`;
    const mine = cgroupOf("self"), theirs = cgroupOf(who.pid);
    if (mine !== null && theirs !== mine) {
      return `pid ${who.pid} runs in ${theirs ?? "another cgroup"}, not in ${mine}`;
    }
    return null;
  }
}

/** The cgroup a process is in (/proc/PID/cgroup, the unified hierarchy), or null. */
function cgroupOf(pid: number | "self"): string | null {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/cgroup`);
    return /^0::(.*)$/m.exec(text)?.[1] ?? text.trim();
  } catch {
    return null;
  }
}
