/**
 * @module
 * Lock files and durable directory entries: `open(2)` a lock file, take an exclusive
 * `flock(2)` without waiting, and `fsync(2)` a directory after a rename so the new entry
 * survives a crash. The kernel drops a flock when its last fd closes, so a lock dies with
 * the process that held it (also on SIGKILL). Each function that returns an fd gives it to
 * the caller, who closes it with `closeFd` (which also releases the lock).
 */
import { errno, libc, libcMore } from "./libc.ts";
import { E, SysError } from "./errno.ts";
import { O_CLOEXEC } from "./constants.ts";

// fcntl.h and sys/file.h (Linux, every architecture apprun runs on).
const O_RDONLY = 0;
const O_RDWR = 2;
const O_CREAT = 0o100;
const O_DIRECTORY = 0o200000;
const LOCK_EX = 2;
const LOCK_NB = 4;

const enc = new TextEncoder();

function cPath(path: string): Uint8Array {
  if (path.includes("\0")) throw new SysError("open", E.EINVAL, `${path}: NUL in path`);
  return enc.encode(path + "\0");
}

/** Opens (creating it with `mode`) a lock file for reading and writing. Caller owns the fd. */
export function openLockFile(path: string, mode = 0o600): number {
  const fd = libcMore().open(cPath(path), O_RDWR | O_CREAT | O_CLOEXEC, mode);
  if (fd < 0) throw new SysError("open", errno(), path);
  return fd;
}

/**
 * `flock(fd, LOCK_EX | LOCK_NB)`: true when this fd now holds the exclusive lock, false when
 * another open file description holds it. Closing the fd releases it.
 */
export function tryLockExclusive(fd: number): boolean {
  for (;;) {
    if (libcMore().flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
    const code = errno();
    if (code === E.EINTR) continue;
    if (code === E.EAGAIN) return false; // EWOULDBLOCK
    throw new SysError("flock", code, `fd ${fd}`);
  }
}

/** `fsync(2)` on a directory, so renames and links inside it are on disk. */
export function syncDirectory(path: string): void {
  const fd = libcMore().open(cPath(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (fd < 0) throw new SysError("open", errno(), path);
  try {
    if (libcMore().fsync(fd) < 0) throw new SysError("fsync", errno(), path);
  } finally {
    libc.close(fd);
  }
}
