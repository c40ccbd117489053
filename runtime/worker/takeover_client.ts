/**
 * @module
 * The next process's side of a warm takeover (docs/design.md, "Warm reload"). The reload helper
 * (reload_helper.ts) starts it with `APPRUN_TAKEOVER` (JSON: the running process's takeover
 * socket and pid, and two fds: a channel to the helper, the helper's own stderr). Before the
 * app runs it connects to the running process (checking that the peer is that pid), says hello
 * and gets the listeners; once the app has loaded it asks to take over and gets the bundle;
 * once it serves what it resumed it tells the helper, which makes it the manager's main
 * process (`MAINPID=`) and says "main"; then the old process may exit. Until "main", stderr
 * goes through the helper (which keeps what a failed start said); after it, to the helper's
 * own stderr, as the main process's does.
 *
 * Owns the connection to the running process, the channel and the stderr fd; the listeners
 * and the bundle fd it hands out become the caller's.
 */
import type { Logger } from "../log.ts";
import type { PassedFd } from "../listen.ts";
import { describeError } from "../errors.ts";
import { takeEnvJson } from "./options.ts";
import { closeFd, connectSeqpacket, peerCredentials, placeFd } from "../sys/mod.ts";
import {
  growFdTable,
  receiveTakeover,
  receiveTakeoverSync,
  sendTakeover,
  TakeoverError,
  type TakeoverMessage,
} from "../handoff/mod.ts";

/** The variable the reload helper passes the next process. */
export const TAKEOVER_ENV = "APPRUN_TAKEOVER";

/** What `APPRUN_TAKEOVER` says. */
export interface TakeoverSpec {
  /** The running process's takeover socket. */
  socket: string;
  /** The running process (the manager's main pid). */
  pid: number;
  /** The channel to the reload helper (an inherited fd). */
  channel: number;
  /** The helper's stderr (an inherited fd): ours once we are the main process. */
  stderr: number;
}

/** Reads and removes `APPRUN_TAKEOVER`; null when absent. Throws TakeoverError when malformed. */
export function takeTakeoverSpec(): TakeoverSpec | null {
  const spec = takeEnvJson(
    TAKEOVER_ENV,
    (message, cause) => new TakeoverError(message, { cause }),
  ) as Partial<TakeoverSpec> | null | undefined;
  if (spec === undefined) return null;
  const isFd = (n: unknown) => Number.isInteger(n) && (n as number) >= 3;
  if (
    typeof spec?.socket !== "string" || !Number.isInteger(spec.pid) || !isFd(spec.channel) ||
    !isFd(spec.stderr)
  ) throw new TakeoverError(`${TAKEOVER_ENV} is not what apprun's reload helper writes`);
  return spec as TakeoverSpec;
}

const OFFER_TIMEOUT_MS = 10_000;

/** A next process's takeover, from hello to the old process's exit. */
export class TakeoverClient {
  /** The running process's generation; this process serves generation + 1. */
  readonly generation: number;
  /** The running process's listeners, named as the fdstore would pass them. */
  readonly listeners: PassedFd[];
  readonly #spec: TakeoverSpec;
  readonly #fd: number;
  readonly #log: Logger;
  #isMain = false;
  readonly #main = Promise.withResolvers<void>();

  private constructor(
    spec: TakeoverSpec,
    fd: number,
    offer: TakeoverMessage,
    fds: number[],
    log: Logger,
  ) {
    this.#spec = spec;
    this.#fd = fd;
    this.#log = log;
    const o = offer as Extract<TakeoverMessage, { t: "offer" }>;
    this.generation = o.generation;
    this.listeners = o.listeners.map((name, i) => ({ fd: fds[i], name }));
    // Room for what is coming (and what may come meanwhile), now rather than in the pause.
    growFdTable(o.connections + (o.connections >> 2) + 2048);
    this.#main.promise.catch(() => {});
  }

  /**
   * Connects to the running process and gets its listeners (blocking: this runs before the app,
   * for a few milliseconds). Throws {@linkcode TakeoverError} saying why it cannot take over.
   */
  static connect(spec: TakeoverSpec, log: Logger): TakeoverClient {
    sendTakeover(spec.channel, { t: "hello", pid: Deno.pid });
    let fd: number;
    try {
      fd = connectSeqpacket(spec.socket);
    } catch (err) {
      throw new TakeoverError(
        `pid ${spec.pid} offers no takeover at ${spec.socket}: ${describeError(err)}`,
      );
    }
    try {
      const peer = peerCredentials(fd).pid;
      if (peer !== spec.pid) {
        throw new TakeoverError(
          `${spec.socket} is pid ${peer}'s, not the main process ${spec.pid}'s`,
        );
      }
      sendTakeover(fd, { t: "hello", pid: Deno.pid });
      const got = receiveTakeoverSync(fd, OFFER_TIMEOUT_MS);
      if (got === "closed") throw new TakeoverError(`pid ${spec.pid} closed the takeover socket`);
      if (got.message.t === "refuse") {
        throw new TakeoverError(`pid ${spec.pid} refused the takeover: ${got.message.why}`);
      }
      if (got.message.t !== "offer") {
        for (const f of got.fds) closeFd(f);
        throw new TakeoverError(`pid ${spec.pid} answered "${got.message.t}" to hello`);
      }
      return new TakeoverClient(spec, fd, got.message, got.fds, log);
    } catch (err) {
      closeFd(fd);
      throw err;
    }
  }

  /** The running process's pid. */
  get oldPid(): number {
    return this.#spec.pid;
  }

  /**
   * Asks the running process to hand over (it stops reading, drains up to its drain timeout and
   * writes the bundle). Resolves with the bundle's reading end (the caller's) and its generation.
   */
  async take(
    timeoutMs: number,
  ): Promise<{ fd: number; generation: number; stoppedAt: number }> {
    const asked = performance.now();
    sendTakeover(this.#fd, { t: "take" });
    const got = await receiveTakeover(this.#fd, timeoutMs);
    this.#log.debug(
      `takeover: the bundle came ${(performance.now() - asked).toFixed(1)} ms after "take"`,
    );
    if (got === "closed") throw new TakeoverError(`pid ${this.#spec.pid} closed the takeover`);
    if (got.message.t !== "bundle") {
      for (const f of got.fds) closeFd(f);
      const why = got.message.t === "refuse" ? `: ${got.message.why}` : "";
      throw new TakeoverError(`pid ${this.#spec.pid} answered "${got.message.t}"${why}`);
    }
    const { generation, stoppedAt } = got.message;
    return { fd: got.fds[0], generation, stoppedAt };
  }

  /**
   * Serving what was carried: tells the helper, waits until it made us the main process, then
   * takes stderr over. Throws {@linkcode TakeoverError} when the helper goes away first.
   */
  async becomeMain(report: { carried: number; pauseMs: number }): Promise<void> {
    sendTakeover(this.#spec.channel, { t: "resumed", pid: Deno.pid, ...report });
    await this.#main.promise;
    this.#isMain = true;
    placeFd(this.#spec.stderr, 2);
    closeFd(this.#spec.stderr);
    closeFd(this.#spec.channel);
  }

  /** The old process may exit now: it was told to (best effort; it exits when we close anyway). */
  releaseOld(): void {
    try {
      sendTakeover(this.#fd, { t: "exit" });
    } catch (err) {
      this.#log.debug(`takeover: telling pid ${this.#spec.pid} to exit: ${describeError(err)}`);
    }
    closeFd(this.#fd);
  }

  /**
   * Follows the helper: its "main", or its going away, which ends this process while it is not
   * the main one. Not before the app runs: Deno evaluates the main module only once what the
   * preload started (timers, pending calls) is done.
   */
  async watchHelper(): Promise<void> {
    let got;
    try {
      got = await receiveTakeover(this.#spec.channel, -1);
    } catch (err) {
      got = null;
      this.#log.error(`takeover: the reload helper: ${describeError(err)}`);
    }
    if (got !== null && got !== "closed" && got.message.t === "main") return this.#main.resolve();
    if (this.#isMain) return;
    this.#log.error("the reload helper went away before this process became the main one: exiting");
    Deno.exit(1);
  }
}

/** Tells the helper why this process cannot take over (best effort), before it exits. */
export function reportFailure(spec: TakeoverSpec | null, why: string): void {
  if (spec === null) return;
  try {
    sendTakeover(spec.channel, { t: "failed", why: why.slice(0, 16_000) }, [], 1000);
  } catch {
    // The helper is gone: it reads our stderr too.
  }
}
