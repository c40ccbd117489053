/**
 * @module
 * A `text/event-stream` Response body the app streams — the usual Deno SSE app returns
 * `new Response(readableStream, { headers: { "content-type": "text/event-stream" } })` — run
 * as an SSE session instead of a plain streaming body, so a handoff can carry it: the bytes are
 * followed as the client reads them (scanner.ts); at a handoff the source stops pulling at an
 * event boundary (finishing an event it is in the middle of), and the next process replays the
 * request with `Last-Event-ID` and pipes its new body into the same response. Owns the app's
 * body reader; cancels it (and aborts the request's signal) when the session is over, as
 * Deno.serve does when a client leaves.
 */
import { type EventStreamOffer, toBytes } from "../http/mod.ts";
import { recordRequest, type SessionEnv, type SessionStarter } from "../sessions/mod.ts";
import { EventStreamScanner } from "./scanner.ts";
import { type SseHooks, type SseOutput, SseSession, type SseSource } from "./session.ts";

/** Write-queue size past which the source waits for the socket to drain before pulling more. */
const WRITE_HWM = 64 * 1024;

/** The session that carries a streaming `text/event-stream` response the engine offered. */
export function eventStreamStarter(response: Response, offer: EventStreamOffer): SessionStarter {
  const { request } = offer;
  return {
    kind: "sse",
    head: () => null,
    // Method parameters are bivariant: the server's env carries every kind's hooks.
    attach(socket, leftover, framing, env: SessionEnv<SseHooks>, listener) {
      const source = new BodySource(response.body!, {
        url: request.url,
        lastEventId: request.headers.get("last-event-id") ?? "",
        abortRequest: (reason) => offer.abortRequest(reason),
      });
      new SseSession({
        env,
        socket,
        source,
        framing,
        buffered: leftover,
        generation: env.generation,
        listener,
        request: recordRequest(request),
      }).start();
    },
    abandon() {
      response.body?.cancel().catch(() => {});
    },
  };
}

/** Options for {@linkcode BodySource}. */
export interface BodySourceOptions {
  url: string;
  /** The client's `Last-Event-ID` (or the one a replay was given). */
  lastEventId: string;
  /** Aborts the request's signal (the session is over). */
  abortRequest(reason: unknown): void;
}

/** A streamed body as a session's source. */
export class BodySource implements SseSource {
  readonly kind = "body";
  readonly url: string;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #scanner: EventStreamScanner;
  readonly #abortRequest: (reason: unknown) => void;
  readonly #stopped = Promise.withResolvers<void>();
  #isStopping = false;
  #isReleased = false;

  constructor(body: ReadableStream<Uint8Array>, o: BodySourceOptions) {
    this.url = o.url;
    this.#reader = body.getReader();
    this.#scanner = new EventStreamScanner(o.lastEventId);
    this.#abortRequest = o.abortRequest;
  }

  get lastEventId(): string {
    return this.#scanner.lastEventId;
  }

  start(out: SseOutput): void {
    void this.#pump(out);
  }

  stop(): Promise<void> {
    this.#isStopping = true;
    if (this.#scanner.isAtBoundary) this.#stopped.resolve();
    return this.#stopped.promise;
  }

  handoffState(): unknown {
    if (!this.#scanner.isAtBoundary) throw new Error("stopped in the middle of an event");
    if (!this.#scanner.isIdKnown) throw new Error("an event id too long to carry");
    return null;
  }

  release(reason: string): void {
    if (this.#isReleased) return;
    this.#isReleased = true;
    this.#stopped.resolve();
    const err = new Error(reason);
    this.#reader.cancel(err).catch(() => {});
    this.#abortRequest(err);
  }

  /** Pulls the body into `out`, with backpressure; at a handoff, up to an event boundary. */
  async #pump(out: SseOutput): Promise<void> {
    const scanner = this.#scanner;
    try {
      for (;;) {
        if (this.#isStopping && scanner.isAtBoundary) return this.#stopped.resolve();
        const r = await this.#reader.read();
        if (this.#isReleased) return;
        if (r.done) return out.end();
        const bytes = toBytes(r.value);
        if (this.#isStopping) {
          // Only the rest of the event under way: the next process sends what follows it.
          if (scanner.isAtBoundary) return this.#stopped.resolve();
          out.write(bytes.subarray(0, scanner.push(bytes, true)));
          continue;
        }
        scanner.push(bytes);
        if (!out.write(bytes)) return; // the client is gone: the session notices
        if (out.bufferedAmount > WRITE_HWM) await out.drained();
      }
    } catch (err) {
      if (!this.#isReleased) out.fail(err);
    }
  }
}
