/**
 * @module
 * Plain fd calls: read, write, pipes, eventfds, fcntl flags, duplication, fstat type. Each
 * function that returns an fd gives ownership to the caller.
 */
import { errno, libc, libcMore } from "./libc.ts";
import { E, SysError } from "./errno.ts";
import {
  CLOCK_MONOTONIC,
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  F_DUPFD_CLOEXEC,
  F_GETFD,
  F_GETFL,
  F_SETFD,
  F_SETFL,
  FD_CLOEXEC,
  KCMP_FILE,
  O_ACCMODE,
  O_CLOEXEC,
  O_NONBLOCK,
  SYS_KCMP,
  TFD_CLOEXEC,
  TFD_NONBLOCK,
} from "./constants.ts";

function check(call: string, rc: number, detail?: string): number {
  if (rc < 0) throw new SysError(call, errno(), detail);
  return rc;
}

/** Reads into `buf`: bytes read, 0 at end, or "again" on a nonblocking fd with nothing ready. */
export function readFd(fd: number, buf: Uint8Array): number | "again" {
  const rc = libc.read(fd, buf, BigInt(buf.byteLength));
  if (rc >= 0) return rc;
  const code = errno();
  if (code === E.EAGAIN) return "again";
  throw new SysError("read", code, `fd ${fd}`);
}

/** Writes all of `buf` to a blocking fd (retries short writes). */
export function writeAll(fd: number, buf: Uint8Array): void {
  let off = 0;
  while (off < buf.byteLength) {
    const chunk = buf.subarray(off);
    const rc = libc.write(fd, chunk, BigInt(chunk.byteLength));
    if (rc < 0) {
      const code = errno();
      if (code === E.EINTR) continue;
      throw new SysError("write", code, `fd ${fd}`);
    }
    off += rc;
  }
}

/** A pipe: [read end, write end], both close-on-exec. Caller owns both. */
export function pipe(options: { isNonBlocking?: boolean } = {}): [number, number] {
  const fds = new Int32Array(2);
  const flags = O_CLOEXEC | (options.isNonBlocking ? O_NONBLOCK : 0);
  check("pipe2", libc.pipe2(new Uint8Array(fds.buffer), flags));
  return [fds[0], fds[1]];
}

/** A nonblocking, close-on-exec eventfd. Caller owns it. */
export function eventFd(): number {
  return check("eventfd", libc.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
}

const one = new BigUint64Array([1n]);
const oneBytes = new Uint8Array(one.buffer);
const drainBytes = new Uint8Array(8);

/** Adds 1 to an eventfd (wakes its epoll waiter). */
export function signalEventFd(fd: number): void {
  libc.write(fd, oneBytes, 8n);
}

/** Resets an eventfd to 0. */
export function drainEventFd(fd: number): void {
  libc.read(fd, drainBytes, 8n);
}

/**
 * A nonblocking, close-on-exec timerfd (CLOCK_MONOTONIC) that becomes readable every
 * `intervalMs`. Caller owns it; {@linkcode drainEventFd} acknowledges the expirations.
 */
export function intervalTimerFd(intervalMs: number): number {
  const fd = check(
    "timerfd_create",
    libc.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC),
  );
  // struct itimerspec { it_interval, it_value }, each { tv_sec, tv_nsec }
  const sec = BigInt(Math.floor(intervalMs / 1000));
  const nsec = BigInt(Math.round((intervalMs % 1000) * 1e6));
  const spec = new BigInt64Array([sec, nsec, sec, nsec]);
  if (libc.timerfd_settime(fd, 0, new Uint8Array(spec.buffer), null) < 0) {
    const code = errno();
    libc.close(fd);
    throw new SysError("timerfd_settime", code);
  }
  return fd;
}

/** Whether `fd` is open in this process. */
export function isOpenFd(fd: number): boolean {
  if (libc.fcntl(fd, F_GETFD, 0) >= 0) return true;
  return errno() !== E.EBADF;
}

/** Sets or clears O_NONBLOCK. */
export function setNonBlocking(fd: number, isNonBlocking: boolean): void {
  const flags = check("fcntl", libc.fcntl(fd, F_GETFL, 0), `F_GETFL fd ${fd}`);
  const next = isNonBlocking ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
  if (next !== flags) check("fcntl", libc.fcntl(fd, F_SETFL, next), `F_SETFL fd ${fd}`);
}

/** Sets or clears FD_CLOEXEC. */
export function setCloseOnExec(fd: number, isCloseOnExec: boolean): void {
  const flags = check("fcntl", libc.fcntl(fd, F_GETFD, 0), `F_GETFD fd ${fd}`);
  const next = isCloseOnExec ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
  if (next !== flags) check("fcntl", libc.fcntl(fd, F_SETFD, next), `F_SETFD fd ${fd}`);
}

/** Duplicates `fd` to the lowest free number ≥ `min`, close-on-exec. Caller owns the copy. */
export function dupFd(fd: number, min = 3): number {
  return check("fcntl", libc.fcntl(fd, F_DUPFD_CLOEXEC, min), `F_DUPFD_CLOEXEC fd ${fd}`);
}

/** The S_IFMT kind of an fd: "socket", "fifo", "file", "dir", "char", "block", "link". */
export function fdKind(fd: number): string {
  const st = new Uint8Array(144);
  check("fstat", libc.fstat(fd, st), `fd ${fd}`);
  // struct stat: st_mode sits after dev, ino and (x86_64 only) nlink.
  const modeOffset = Deno.build.arch === "x86_64" ? 24 : 16;
  const mode = new DataView(st.buffer).getUint32(modeOffset, true) & 0o170000;
  switch (mode) {
    case 0o140000:
      return "socket";
    case 0o010000:
      return "fifo";
    case 0o100000:
      return "file";
    case 0o040000:
      return "dir";
    case 0o020000:
      return "char";
    case 0o060000:
      return "block";
    default:
      return "link";
  }
}

/** The fds open in this process, from /proc/self/fd. */
export function openFds(): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc/self/fd")) out.push(Number(e.name));
  return out.sort((a, b) => a - b);
}

/**
 * Whether `a` and `b` refer to the same open file description, as systemd's same_fd() decides
 * it: kcmp(2) KCMP_FILE, or, where kcmp is not available (ENOSYS, EPERM, EACCES), the same
 * inode (device fds never count as the same) with the same access mode.
 */
export function isSameFile(a: number, b: number): boolean {
  if (a === b) return true;
  const pid = BigInt(libc.getpid());
  const rc = Number(
    libcMore().syscall5(BigInt(SYS_KCMP), pid, pid, BigInt(KCMP_FILE), BigInt(a), BigInt(b)),
  );
  if (rc >= 0) return rc === 0;
  const code = errno();
  if (code !== E.ENOSYS && code !== E.EPERM && code !== E.EACCES) {
    throw new SysError("kcmp", code, `fds ${a} and ${b}`);
  }
  const sa = new Uint8Array(144), sb = new Uint8Array(144);
  check("fstat", libc.fstat(a, sa), `fd ${a}`);
  check("fstat", libc.fstat(b, sb), `fd ${b}`);
  const va = new DataView(sa.buffer), vb = new DataView(sb.buffer);
  // struct stat: st_dev at 0, st_ino at 8 on both architectures.
  if (va.getBigUint64(0, true) !== vb.getBigUint64(0, true)) return false;
  if (va.getBigUint64(8, true) !== vb.getBigUint64(8, true)) return false;
  const kind = fdKind(a);
  if (kind === "char" || kind === "block") return false;
  const fa = check("fcntl", libc.fcntl(a, F_GETFL, 0), `F_GETFL fd ${a}`);
  const fb = check("fcntl", libc.fcntl(b, F_GETFL, 0), `F_GETFL fd ${b}`);
  return (fa & O_ACCMODE) === (fb & O_ACCMODE);
}
