/**
 * @module
 * Parked fds: many fds watched by one handler until each is first ready, then handed to a
 * callback with the tag it was parked with, to become a full connection only then. A resumed
 * process parks the idle connections it carried (docs/design.md, "Lazy resume"): each is in
 * the loop — served — as soon as it is parked, and costs one number until its client speaks.
 * `parkAll` parks a whole list newest first, a chunk per turn of the loop, so the first ones
 * are served while the rest are still being added (an epoll_ctl each): a chunk a millisecond, from
 * a loop timer (Deno's first setTimeout would cost the resume its 10–40 ms of loading).
 *
 * Owns the parked fds (and those waiting to be parked) until it hands one out (`onWake`,
 * `take`) or closes them.
 */
import { EPOLLIN, EPOLLRDHUP } from "../sys/mod.ts";
import type { EventLoop, IoHandler } from "./loop.ts";

/** fds parked per turn of the loop by `parkAll` (fewer in the first turn: served sooner). */
const FIRST_CHUNK = 256;
const CHUNK = 1024;

/** One handler for many fds, each with a number of the caller's. */
export class ParkedFds implements IoHandler {
  readonly #loop: EventLoop;
  readonly #onWake: (fd: number, tag: number) => void;
  /** The tag of each parked fd, by fd number (-1: not parked). */
  #tags = new Int32Array(0);
  #count = 0;
  /** `parkAll`'s fds still to park: indexes `next` down to 0 (tag = index). */
  #waiting: { fds: readonly number[]; next: number } | null = null;
  /** Stops the timer that parks the next chunk, while `#waiting`. */
  #stopChunks: (() => void) | null = null;

  /** `onWake` gets each fd (now the callback's, out of the loop) when first ready. */
  constructor(loop: EventLoop, onWake: (fd: number, tag: number) => void) {
    this.#loop = loop;
    this.#onWake = onWake;
  }

  /** Parked and waiting to be parked. */
  get size(): number {
    return this.#count + (this.#waiting === null ? 0 : this.#waiting.next + 1);
  }

  /** Watches `fd` (now ours) for reads and hangups, tagged `tag` (≥ 0). */
  park(fd: number, tag: number): void {
    this.#loop.add(fd, EPOLLIN | EPOLLRDHUP, this);
    if (fd >= this.#tags.length) {
      const grown = new Int32Array(Math.max(fd + 1, this.#tags.length * 2, 1024)).fill(-1);
      grown.set(this.#tags);
      this.#tags = grown;
    }
    this.#tags[fd] = tag;
    this.#count++;
  }

  /** Parks `fds[i]` tagged `i`, from the last to the first, a chunk per turn of the loop. */
  parkAll(fds: readonly number[]): void {
    if (this.#waiting !== null) throw new Error("parkAll: a list is being parked already");
    this.#waiting = { fds, next: fds.length - 1 };
    this.#parkChunk(FIRST_CHUNK);
    if (this.#waiting !== null) this.#stopChunks = this.#loop.every(1, () => this.#parkChunk());
  }

  #parkChunk(size = CHUNK): void {
    const waiting = this.#waiting;
    if (waiting === null) return;
    const stop = Math.max(-1, waiting.next - size);
    for (let i = waiting.next; i > stop; i--) this.park(waiting.fds[i], i);
    waiting.next = stop;
    if (stop < 0) this.#doneWaiting();
  }

  #doneWaiting(): void {
    this.#waiting = null;
    this.#stopChunks?.();
    this.#stopChunks = null;
  }

  onEvent(_events: number, fd: number): void {
    const tag = this.#tags[fd] ?? -1;
    if (tag < 0) return;
    this.#tags[fd] = -1;
    this.#count--;
    this.#loop.remove(fd);
    this.#onWake(fd, tag);
  }

  /**
   * Takes every fd out for a handoff, the parked ones forgotten by the loop (EventLoop.forget),
   * which the caller disposes before closing them: fds and their tags, now the caller's.
   */
  take(): { fds: number[]; tags: number[] } {
    const fds: number[] = [], tags: number[] = [];
    const waiting = this.#waiting;
    for (let i = waiting?.next ?? -1; i >= 0; i--) {
      fds.push(waiting!.fds[i]);
      tags.push(i);
    }
    const all = this.#tags;
    for (let fd = 0; fd < all.length; fd++) {
      if (all[fd] < 0) continue;
      fds.push(fd);
      tags.push(all[fd]);
      this.#loop.forget(fd);
    }
    this.#reset();
    return { fds, tags };
  }

  /** Closes every fd, parked or waiting. */
  closeAll(): void {
    const waiting = this.#waiting;
    for (let i = waiting?.next ?? -1; i >= 0; i--) this.#loop.close(waiting!.fds[i]);
    const all = this.#tags;
    for (let fd = 0; fd < all.length; fd++) if (all[fd] >= 0) this.#loop.close(fd);
    this.#reset();
  }

  #reset(): void {
    this.#doneWaiting();
    this.#tags = new Int32Array(0);
    this.#count = 0;
  }
}
