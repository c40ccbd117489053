/**
 * @module
 * The check before a requested restart (`beforeRestart`): a restart stops the running worker
 * first, so what comes next is asked whether it can run before anything is stopped; when it
 * cannot, the restart is refused and the running worker goes on serving. Requests that come
 * while a check runs wait for the next one, which starts when it ends: a check that began
 * before a change (a file saved again, a fix after a typo) never answers for it. Owns no
 * process or timer: the check is the caller's; aborts it when closed.
 */
import type { RestartReply } from "./control.ts";
import { SupervisorError } from "./errors.ts";

/** A restart refused by the check: the running worker goes on serving. */
export class RestartRefused extends SupervisorError {
  override name = "RestartRefused";
}

/** What the gate needs. */
export interface RestartGateOptions {
  /** Resolves when the next worker may be started; rejects (with why) when it may not. */
  check(reason: string, signal: AbortSignal): Promise<void>;
  /** The restart itself, once the check passed. */
  restart(reason: string, isPreempting: boolean): Promise<RestartReply>;
  /** Called with each refusal (to log it). */
  onRefused(reason: string, err: unknown): void;
}

interface Round {
  reasons: string[];
  isPreempting: boolean;
  waiters: PromiseWithResolvers<RestartReply>[];
}

/** Requests in, checked restarts out. */
export class RestartGate {
  readonly #opts: RestartGateOptions;
  readonly #abort = new AbortController();
  /** Requests waiting for the next check. */
  #next: Round | null = null;
  #isChecking = false;

  constructor(opts: RestartGateOptions) {
    this.#opts = opts;
  }

  /** Resolves with the new worker's READY=1; rejects with {@linkcode RestartRefused} or why it failed. */
  request(reason: string, isPreempting = false): Promise<RestartReply> {
    if (this.#abort.signal.aborted) {
      return Promise.reject(new SupervisorError("cannot restart: the supervisor is stopping"));
    }
    const round = this.#next ??= { reasons: [], isPreempting: false, waiters: [] };
    round.isPreempting ||= isPreempting;
    if (!round.reasons.includes(reason)) round.reasons.push(reason);
    const waiter = Promise.withResolvers<RestartReply>();
    round.waiters.push(waiter);
    if (!this.#isChecking) this.#drain();
    return waiter.promise;
  }

  /** Aborts a running check; later requests are refused. */
  close(): void {
    this.#abort.abort();
  }

  async #drain(): Promise<void> {
    this.#isChecking = true;
    try {
      for (let round = this.#next; round !== null; round = this.#next) {
        this.#next = null;
        const reason = round.reasons.join("; ");
        const settle = (p: Promise<RestartReply>) => {
          for (const w of round!.waiters) p.then(w.resolve, w.reject);
        };
        try {
          await this.#opts.check(reason, this.#abort.signal);
        } catch (err) {
          if (!this.#abort.signal.aborted) this.#opts.onRefused(reason, err);
          const why = err instanceof Error ? err.message : String(err);
          settle(Promise.reject(new RestartRefused(`not restarted: ${why}`, { cause: err })));
          continue;
        }
        // The driver merges it with a restart under way; the next round is checked meanwhile.
        settle(this.#opts.restart(reason, round.isPreempting));
      }
    } finally {
      this.#isChecking = false;
    }
  }
}
