/**
 * @module
 * What a session may queue for a client that does not read, and for how long: a session is
 * the server's until it ends, so none of it may grow or wait without a bound (one slow client
 * must never cost the others memory). Above {@linkcode READ_PAUSE_BYTES} queued a session
 * stops reading its client (what the client sends then waits in the kernel, and the client's
 * own sends stall: TCP's backpressure); above `maxBufferedBytes` at a send the client is cut
 * off; a queue that makes no progress for the server's write-stall time is cut off by the
 * server's sweep; every close waits for its last bytes at most {@linkcode CLOSE_TIMEOUT_MS}.
 * The protocols (ws/, sse/) apply these; this module only holds the marks and the waits.
 */
import type { Socket } from "../io/mod.ts";

/** Queued output above which a session stops reading its client until the queue is written. */
export const READ_PAUSE_BYTES = 256 * 1024;

/**
 * Default most bytes a session may have queued when the app sends more: past it the client is
 * not reading and the connection is closed (WHATWG HTML, WebSocket `send()`: a full buffer
 * closes the connection). One message may go past it; the next send is refused.
 */
export const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

/** A closing session whose last bytes are not taken within this is cut off. */
export const CLOSE_TIMEOUT_MS = 5000;

/**
 * Whether `socket` has had bytes queued and taken none for longer than `stallMs` at `now`
 * (performance.now()).
 */
export function isWriteStalled(socket: Socket, now: number, stallMs: number): boolean {
  return socket.bufferedAmount > 0 && now - socket.lastWriteProgress > stallMs;
}

/**
 * Resolves true once `socket`'s queue is written (or the socket is gone), false when
 * `timeoutMs` passed first: then the caller cuts the connection off instead of waiting on.
 */
export function drainedWithin(socket: Socket, timeoutMs = CLOSE_TIMEOUT_MS): Promise<boolean> {
  if (socket.bufferedAmount === 0) return Promise.resolve(true);
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    socket.drained().then(() => true),
    new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), timeoutMs)),
  ]).finally(() => clearTimeout(timer));
}

/** Closes `socket` once what is queued is written, or after `timeoutMs` whatever is left. */
export function closeWhenDrained(socket: Socket, timeoutMs = CLOSE_TIMEOUT_MS): void {
  drainedWithin(socket, timeoutMs).then(() => socket.close());
}
