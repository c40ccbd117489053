/**
 * @module
 * One upgrade at a time per service: an exclusive, non-blocking flock(2) on `BIN.lock`. The
 * kernel releases it when the holder's fd closes — at dispose, or when the process dies,
 * even by SIGKILL — so a killed upgrade never leaves a stale lock. Owns the lock file's fd.
 */
import { closeFd, openLockFile, tryLockExclusive } from "../sys/mod.ts";
import { UpgradeError } from "./errors.ts";

/** A held upgrade lock; `using` it releases it at the end of the scope. */
export class UpgradeLock implements Disposable {
  readonly path: string;
  #fd: number;

  private constructor(path: string, fd: number) {
    this.path = path;
    this.#fd = fd;
  }

  /** Takes the lock of `bin` for `name`, or throws {@linkcode UpgradeError} at once. */
  static acquire(bin: string, name: string): UpgradeLock {
    const path = `${bin}.lock`;
    let fd: number;
    try {
      fd = openLockFile(path);
    } catch (err) {
      throw new UpgradeError(`cannot open the upgrade lock ${path}`, { cause: err });
    }
    if (!tryLockExclusive(fd)) {
      closeFd(fd);
      throw new UpgradeError(`another upgrade of ${name} is running (${path} is locked)`);
    }
    return new UpgradeLock(path, fd);
  }

  release(): void {
    if (this.#fd < 0) return;
    closeFd(this.#fd);
    this.#fd = -1;
  }

  [Symbol.dispose](): void {
    this.release();
  }
}
