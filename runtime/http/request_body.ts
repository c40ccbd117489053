/**
 * @module
 * The body of one request as it arrives: decodes Content-Length or chunked framing from the
 * connection's bytes and feeds a pull-based `ReadableStream` whose backpressure pauses the
 * socket. Never touches the socket itself: it asks its host to pause or resume reading.
 */
import { ChunkedDecoder } from "./chunked.ts";
import type { HttpLimits } from "./limits.ts";

/** What the body reader needs from its connection. */
export interface BodyHost {
  pauseReading(): void;
  resumeReading(): void;
  /** The app started reading: time to send `100 Continue` if the client waits for it. */
  onFirstPull(): void;
}

/** High-water mark of the request body stream, in bytes. */
const BODY_HWM = 64 * 1024;

/** Decodes and delivers one request body. */
export class RequestBody {
  readonly #host: BodyHost;
  readonly #chunked: ChunkedDecoder | null;
  #remaining: number;
  #controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  #isDone = false;
  #isDiscarding = false;
  #isPulled = false;
  readonly stream: ReadableStream<Uint8Array> | null;

  /**
   * `contentLength` ≥ 0, or `isChunked`. With `hasStream` false (GET, HEAD) the bytes are
   * decoded and dropped: the Request has no body, the framing must still be honoured.
   */
  constructor(
    host: BodyHost,
    opts: { contentLength: number; isChunked: boolean; hasStream: boolean; limits: HttpLimits },
  ) {
    this.#host = host;
    this.#chunked = opts.isChunked ? new ChunkedDecoder(opts.limits) : null;
    this.#remaining = opts.isChunked ? 0 : Math.max(opts.contentLength, 0);
    if (!opts.isChunked && this.#remaining === 0) this.#isDone = true;
    if (!opts.hasStream) {
      this.#isDiscarding = true;
      this.stream = null;
      return;
    }
    this.stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
        if (this.#isDone) controller.close();
      },
      pull: () => {
        if (!this.#isPulled) {
          this.#isPulled = true;
          this.#host.onFirstPull();
        }
        this.#host.resumeReading();
      },
      cancel: () => {
        this.#isDiscarding = true;
        this.#controller = null;
        this.#host.resumeReading();
      },
    }, { highWaterMark: BODY_HWM, size: (chunk) => chunk.byteLength });
  }

  get isDone(): boolean {
    return this.#isDone;
  }

  /** Whether the app asked for body bytes (so a waiting client was told to send them). */
  get isPulled(): boolean {
    return this.#isPulled;
  }

  /**
   * Feeds `bytes`; returns how many belong to this body (the rest is the next request).
   * Throws an `HttpError` on malformed framing; the stream is errored first.
   */
  push(bytes: Uint8Array): number {
    if (this.#isDone) return 0;
    try {
      let used: number;
      if (this.#chunked !== null) {
        used = this.#chunked.push(bytes, 0, bytes.byteLength, (data) => this.#deliver(data));
        if (this.#chunked.isDone) this.#finish();
      } else {
        used = Math.min(this.#remaining, bytes.byteLength);
        this.#deliver(bytes.subarray(0, used));
        this.#remaining -= used;
        if (this.#remaining === 0) this.#finish();
      }
      return used;
    } catch (err) {
      this.fail(err);
      throw err;
    }
  }

  /** Ends the stream with an error (client gone, timeout, bad framing). */
  fail(reason: unknown): void {
    if (this.#isDone) return;
    this.#isDone = true;
    try {
      this.#controller?.error(reason);
    } catch {
      // Already closed or errored by the app: nothing left to tell it.
    }
    this.#controller = null;
  }

  #deliver(data: Uint8Array): void {
    if (this.#isDiscarding || data.byteLength === 0) return;
    const c = this.#controller!;
    c.enqueue(data.slice());
    if ((c.desiredSize ?? 1) <= 0) this.#host.pauseReading();
  }

  #finish(): void {
    this.#isDone = true;
    if (this.#controller !== null) {
      try {
        this.#controller.close();
      } catch {
        // The app cancelled the stream.
      }
      this.#controller = null;
    }
  }
}
