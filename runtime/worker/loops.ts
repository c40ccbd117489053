/**
 * @module
 * `apprun serve --parallel N` (docs/design.md, "Several loops"): N event loops in one process,
 * so the manager still sees one main pid and one fdstore. Loop 0 is the main thread's, where the
 * app is Deno's main module; loops 1…N-1 are Web Workers (loop_entry.ts), each with its own
 * event loop (epoll fd), its own module instance of the app and a server on the same listeners
 * (fd numbers are process-wide; the acceptors use EPOLLEXCLUSIVE, so a connection wakes one
 * loop). This module is the main thread's side: it starts the Workers once the app loaded on
 * loop 0, and asks them, in messages, to serve a share of what a bundle carried, to harvest
 * their connections for a handoff (merged into the one bundle: spread.ts), or to stop.
 *
 * Ownership: the main thread owns the listeners (it opened them or got them from the manager,
 * and closes them); a loop owns the connections it serves; a harvest's fds are the main
 * thread's from the moment the loop posts it (its server closed first), and a share's fds the
 * loop's from the moment the main thread posts it. sd_notify and signals stay on the main
 * thread: READY=1 is sent once every loop serves.
 */
import type { Logger } from "../log.ts";
import type { Listener } from "../listen.ts";
import type { Server } from "../server.ts";
import { type Harvest, harvest } from "./hand_off.ts";
import type { Resumed } from "./resume.ts";
import type { WorkerOptions } from "./options.ts";
import { mergeHarvests, spreadResumed } from "./spread.ts";
import { closeFd } from "../sys/mod.ts";
import { LOOP_ENTRY } from "./command.ts";

/** What the main thread asks of a loop. */
export type LoopRequest =
  | {
    t: "init";
    index: number;
    /** The app's module URL, and its arguments (`Deno.args` as the main thread has them). */
    app: string;
    args: string[];
    opts: WorkerOptions;
    bindings: Listener[][];
  }
  | { t: "resume"; generation: number; share: Resumed | null }
  | { t: "harvest"; drainTimeoutMs: number }
  | { t: "stop-accepting" }
  | { t: "shutdown" };

/** A loop's answers, one per request. */
export type LoopReply =
  | { t: "loaded" }
  | { t: "failed"; message: string }
  | { t: "serving" }
  | { t: "harvest"; harvest: Harvest | null }
  | { t: "not-accepting" }
  | { t: "stopped" };

/** How long a loop may take to load the app; past it, the process serves without it. */
const LOAD_TIMEOUT_MS = 60_000;
/** How long a loop may take to resume its share and serve. */
const RESUME_TIMEOUT_MS = 30_000;
/** How long a loop may take to answer past the drain timeout. */
const ANSWER_MARGIN_MS = 15_000;

/**
 * One Worker loop, with the answers it owes, in order. A loop that fails (an error it left
 * unhandled, a request it could not do) or does not answer in time is ended: what it served is lost with it (its fds stay
 * open until the process exits), and it is asked nothing more.
 */
class Loop {
  readonly index: number;
  readonly #worker: Worker;
  readonly #waiting: ((reply: LoopReply) => void)[] = [];
  #failure: string | null = null;

  constructor(index: number, log: Logger) {
    this.index = index;
    this.#worker = new Worker(LOOP_ENTRY, { type: "module", name: `apprun loop ${index}` });
    this.#worker.onmessage = (e: MessageEvent<LoopReply>) => this.#waiting.shift()?.(e.data);
    this.#worker.onerror = (e) => {
      e.preventDefault();
      log.error(`loop ${index} failed: ${e.message}`);
      this.#end(e.message);
    };
  }

  /** Sends `request`; resolves with the answer, or a failure after `timeoutMs`. */
  ask(request: LoopRequest, timeoutMs: number): Promise<LoopReply> {
    if (this.#failure !== null) return Promise.resolve({ t: "failed", message: this.#failure });
    const answer = Promise.withResolvers<LoopReply>();
    this.#waiting.push(answer.resolve);
    this.#worker.postMessage(request);
    const timer = setTimeout(
      () => this.#end(`no answer to ${request.t} in ${timeoutMs} ms`),
      timeoutMs,
    );
    return answer.promise.finally(() => clearTimeout(timer));
  }

  /** Not failed nor ended: it can be asked. */
  get isAlive(): boolean {
    return this.#failure === null;
  }

  terminate(): void {
    this.#end("ended");
  }

  #end(why: string): void {
    this.#failure ??= why;
    this.#worker.terminate();
    for (const answer of this.#waiting.splice(0)) answer({ t: "failed", message: why });
  }
}

/** The Worker loops of a process (loop 0, the main thread's, is the caller's server). */
export class LoopGroup {
  readonly #loops: Loop[];
  readonly #log: Logger;
  readonly #drainTimeoutMs: number;

  private constructor(loops: Loop[], log: Logger, drainTimeoutMs: number) {
    this.#loops = loops;
    this.#log = log;
    this.#drainTimeoutMs = drainTimeoutMs;
  }

  /**
   * Starts loops 1…n-1 on the app `app` (a module URL), serving the listeners of `bindings`
   * (the main loop's servers, in order). A loop where the app serves nothing (its `Deno.serve`
   * under `if (import.meta.main)`) or fails to load is logged and left out.
   */
  static async start(
    n: number,
    app: string,
    bindings: Listener[][],
    opts: WorkerOptions,
    log: Logger,
  ): Promise<LoopGroup> {
    const loops: Loop[] = [];
    for (let i = 1; i < n; i++) loops.push(new Loop(i, log));
    const replies = await Promise.all(
      loops.map((l) =>
        l.ask({ t: "init", index: l.index, app, args: Deno.args, opts, bindings }, LOAD_TIMEOUT_MS)
      ),
    );
    const serving = loops.filter((l, i) => {
      const reply = replies[i];
      if (reply.t === "loaded") return true;
      log.warn(
        `loop ${l.index} does not serve: ${reply.t === "failed" ? reply.message : reply.t} ` +
          `(a Deno.serve under \`if (import.meta.main)\` serves on the main loop only)`,
      );
      l.terminate();
      return false;
    });
    const count = serving.length + 1;
    log.info(`serving on ${count} event loop${count === 1 ? "" : "s"}`);
    return new LoopGroup(serving, log, opts.drainTimeoutMs);
  }

  /** Loops that serve, the main thread's included. */
  get size(): number {
    return this.#live().length + 1;
  }

  /**
   * The i-th live Worker loop serves `shares[i]` (null: nothing carried). Resolves once every
   * loop serves. A share its loop could not take is closed (its clients see the end, no fd leaks).
   */
  async resume(generation: number, shares: (Resumed | null)[]): Promise<void> {
    const replies = await this.#each((l, i) =>
      l.ask({ t: "resume", generation, share: shares[i] }, RESUME_TIMEOUT_MS)
    );
    replies.forEach((r, i) => {
      const share = shares[i];
      if (r.t === "serving" || share === null) return;
      for (const c of share.connections) closeFd(c.fd);
      for (const fd of share.idle?.fds ?? []) closeFd(fd);
    });
  }

  /** `carried` as one share per live loop, the main loop's first (spread.ts). */
  spread(carried: Resumed): Resumed[] {
    return spreadResumed(carried, this.size);
  }

  /**
   * The harvest of every loop, merged (spread.ts): the main loop's `server` and each Worker's
   * (its server closed). The fds are the caller's.
   */
  async harvest(server: Server, drainTimeoutMs: number, log: Logger): Promise<Harvest> {
    const [own, replies] = await Promise.all([
      harvest(server, drainTimeoutMs, log),
      this.#each((l) => l.ask({ t: "harvest", drainTimeoutMs }, drainTimeoutMs + ANSWER_MARGIN_MS)),
    ]);
    const others = replies.flatMap((r) =>
      r.t === "harvest" && r.harvest !== null ? [r.harvest] : []
    );
    return mergeHarvests([own, ...others]);
  }

  /** Every Worker loop stops accepting (the listeners stay open). */
  async stopAccepting(): Promise<void> {
    await this.#each((l) => l.ask({ t: "stop-accepting" }, ANSWER_MARGIN_MS));
  }

  /** Every Worker loop finishes its requests in flight and closes its connections. */
  async shutdown(): Promise<void> {
    await this.#each((l) => l.ask({ t: "shutdown" }, this.#drainTimeoutMs + ANSWER_MARGIN_MS));
  }

  #live(): Loop[] {
    return this.#loops.filter((l) => l.isAlive);
  }

  /** Asks every live loop; the answers in the same order. */
  async #each(ask: (l: Loop, i: number) => Promise<LoopReply>): Promise<LoopReply[]> {
    const loops = this.#live();
    const replies = await Promise.all(loops.map(ask));
    replies.forEach((r, i) => {
      if (r.t !== "failed") return;
      // Whatever it was doing is in doubt: it is asked nothing more.
      this.#log.error(`loop ${loops[i].index}: ${r.message}`);
      loops[i].terminate();
    });
    return replies;
  }
}
