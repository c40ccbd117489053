/**
 * @module
 * The fdstore (systemd.service(5) `FileDescriptorStoreMax=`, sd_notify(3) `FDSTORE=1`): fds a
 * worker hands over to survive its restart. Mirrors service_add_fd_store() in systemd:
 * 1. A full store refuses the fd and every fd after it in the same message (closed, one warning).
 * 2. An fd identical to a stored one (same open file: kcmp) is not stored twice (closed).
 * 3. Stored fds are watched for EPOLLHUP/EPOLLERR and dropped when either comes, unless stored
 *    with FDPOLL=0; fds epoll refuses (EPERM: regular files) are kept unwatched.
 * 4. Newest first: that is the order the next worker receives them in.
 * Owns every stored fd and closes it on removal, hangup or flush; owns the fds given to
 * {@linkcode FdStore.add} from the moment of the call, kept or not.
 */
import type { EventLoop } from "../io/mod.ts";
import type { Logger } from "../log.ts";
import { closeFd, E, EPOLLERR, isSameFile, SysError } from "../sys/mod.ts";

/** One stored fd. */
export interface StoredFd {
  fd: number;
  name: string;
  isPolled: boolean;
}

/** Options for {@linkcode FdStore}. */
export interface FdStoreOptions {
  max: number;
  /** Watches stored fds for hangups. Not owned. */
  loop: EventLoop;
  log: Logger;
}

/** The store. Entries are kept newest first. */
export class FdStore {
  readonly #max: number;
  readonly #loop: EventLoop;
  readonly #log: Logger;
  #entries: StoredFd[] = [];

  constructor(opts: FdStoreOptions) {
    this.#max = opts.max;
    this.#loop = opts.loop;
    this.#log = opts.log;
  }

  get size(): number {
    return this.#entries.length;
  }

  /** The stored fds, newest first (the order LISTEN_FDS gets them in). */
  entries(): readonly StoredFd[] {
    return this.#entries;
  }

  /** Names with their counts, in store order. */
  summary(): { name: string; count: number }[] {
    const counts = new Map<string, number>();
    for (const e of this.#entries) counts.set(e.name, (counts.get(e.name) ?? 0) + 1);
    return [...counts].map(([name, count]) => ({ name, count }));
  }

  /** Stores `fds` under `name` (steps 1–3). Takes ownership of every fd in `fds`. */
  add(fds: readonly number[], name: string, isPolled: boolean): void {
    for (let i = 0; i < fds.length; i++) {
      const fd = fds[i];
      if (this.#entries.length >= this.#max) {
        for (const rest of fds.slice(i)) closeFd(rest);
        this.#log.warn(
          `fdstore: cannot store more fds than fdStoreMax=${this.#max} ` +
            `(FileDescriptorStoreMax=); closed the remaining ${fds.length - i} of "${name}"`,
        );
        return;
      }
      let same: StoredFd | undefined;
      try {
        same = this.#entries.find((e) => isSameFile(e.fd, fd));
      } catch (err) {
        closeFd(fd);
        this.#log.error(`fdstore: cannot compare fd ${fd} ("${name}"): ${String(err)}`);
        continue;
      }
      if (same) {
        closeFd(fd);
        this.#log.debug(
          `fdstore: "${name}" is already stored (as "${same.name}"): not added twice`,
        );
        continue;
      }
      const entry: StoredFd = { fd, name, isPolled };
      if (isPolled && !this.#watch(entry)) entry.isPolled = false;
      this.#entries.unshift(entry);
      this.#log.debug(`fdstore: stored fd ${fd} as "${name}"${isPolled ? "" : " (FDPOLL=0)"}`);
    }
  }

  /** FDSTOREREMOVE=1: closes every fd stored under `name`. Returns how many. */
  remove(name: string): number {
    const gone = this.#entries.filter((e) => e.name === name);
    for (const e of gone) this.#drop(e);
    this.#log.debug(`fdstore: removed ${gone.length} fd(s) named "${name}" on request`);
    return gone.length;
  }

  /** Closes everything (the supervisor stops: systemd drops the store on a plain stop). */
  flush(): void {
    if (this.#entries.length > 0) {
      this.#log.info(`fdstore: flushing ${this.#entries.length} stored fd(s)`);
    }
    for (const e of [...this.#entries]) this.#drop(e);
  }

  /** Registers for hangups with no other events (epoll always reports HUP and ERR). */
  #watch(entry: StoredFd): boolean {
    try {
      this.#loop.add(entry.fd, 0, {
        onEvent: (events) => {
          const what = events & EPOLLERR ? "EPOLLERR" : "EPOLLHUP";
          this.#log.debug(`fdstore: ${what} on stored fd "${entry.name}": dropped`);
          this.#drop(entry);
        },
      });
      return true;
    } catch (err) {
      // EPERM: not pollable (a regular file), which systemd accepts unwatched, as do we.
      if (!(err instanceof SysError && err.errno === E.EPERM)) {
        this.#log.warn(`fdstore: cannot watch "${entry.name}" for hangups: ${String(err)}`);
      }
      return false;
    }
  }

  #drop(entry: StoredFd): void {
    const i = this.#entries.indexOf(entry);
    if (i < 0) return;
    this.#entries.splice(i, 1);
    if (entry.isPolled) this.#loop.close(entry.fd);
    else closeFd(entry.fd);
  }
}
