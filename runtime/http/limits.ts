/**
 * @module
 * The size and time limits of the HTTP engine, with their defaults. Plain data: the parser and
 * the connection read them; nothing here enforces anything.
 */

/** Limits on what a client may send. Sizes in bytes, times in milliseconds. */
export interface HttpLimits {
  /** Longest request line (method, target, version). Past it: 414. */
  maxRequestLineBytes: number;
  /** Largest request head (request line + fields). Past it: 431. */
  maxHeadBytes: number;
  /** Most header fields in a head (or in chunked trailers). Past it: 431. */
  maxHeaderCount: number;
  /** Largest request body. Past it: 413. */
  maxBodyBytes: number;
  /** Time from a request's first byte to the end of its head. Past it: 408 + close. */
  headerTimeoutMs: number;
  /** Longest silence while a request body is still arriving. Past it: 408 + close. */
  bodyTimeoutMs: number;
  /**
   * How long an idle keep-alive connection is kept. Past it: quiet close. Also the grace a
   * handler gets to answer once its client has gone (FIN, `req.signal` aborted).
   */
  idleTimeoutMs: number;
  /** Time from a request's head to its response's head; 0 for none. Past it: 503 + close. */
  handlerTimeoutMs: number;
  /** Unparsed bytes buffered behind a request in progress before reading pauses. */
  maxPipelineBytes: number;
}

export const DEFAULT_LIMITS: Readonly<HttpLimits> = Object.freeze({
  maxRequestLineBytes: 8 * 1024,
  maxHeadBytes: 64 * 1024,
  maxHeaderCount: 100,
  maxBodyBytes: 64 * 1024 * 1024,
  headerTimeoutMs: 30_000,
  bodyTimeoutMs: 60_000,
  idleTimeoutMs: 60_000,
  handlerTimeoutMs: 0,
  maxPipelineBytes: 64 * 1024,
});
