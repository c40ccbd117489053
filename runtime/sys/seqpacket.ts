/**
 * @module
 * The small toolkit a warm takeover needs from the kernel: a unix SOCK_SEQPACKET listener at a
 * path and a connection to one (message boundaries kept, fds passed with fdpass.ts), the peer's
 * credentials as the kernel vouches for them (SO_PEERCRED), waiting for fds with poll(2) off
 * the JavaScript thread, and placing an fd at a chosen number (dup3). Every fd returned is the
 * caller's; nothing here keeps one.
 */
import { errno, libc, libcMore } from "./libc.ts";
import { E, SysError } from "./errno.ts";
import {
  O_CLOEXEC,
  SO_PEERCRED,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_SEQPACKET,
  SOL_SOCKET,
} from "./constants.ts";
import { encodeSockAddr } from "./socket.ts";
import type { Credentials } from "./fdpass.ts";

/** poll(2) event bits. */
export const POLLIN = 0x001;
export const POLLOUT = 0x004;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;

function check(call: string, rc: number, detail?: string): number {
  if (rc < 0) throw new SysError(call, errno(), detail);
  return rc;
}

/**
 * Listens on a new nonblocking AF_UNIX SOCK_SEQPACKET socket bound at `path`, set to `mode`
 * before listen(2), so nobody can connect through wider permissions. The caller owns the fd
 * and the file (unlink it when done).
 */
export function listenSeqpacket(path: string, mode = 0o600, backlog = 8): number {
  const fd = check("socket", libc.socket(1, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  try {
    const sa = encodeSockAddr({ transport: "unix", path });
    check("bind", libc.bind(fd, sa, sa.length), path);
    Deno.chmodSync(path, mode);
    check("listen", libc.listen(fd, backlog), path);
    return fd;
  } catch (err) {
    libc.close(fd);
    throw err;
  }
}

/** Connects a new blocking, close-on-exec SOCK_SEQPACKET socket to `path`. Caller owns it. */
export function connectSeqpacket(path: string): number {
  const fd = check("socket", libc.socket(1, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  const sa = encodeSockAddr({ transport: "unix", path });
  if (libc.connect(fd, sa, sa.length) < 0) {
    const code = errno();
    libc.close(fd);
    throw new SysError("connect", code, path);
  }
  return fd;
}

/** The pid, uid and gid of the process that connected (or created) the peer socket. */
export function peerCredentials(fd: number): Credentials {
  const cred = new Int32Array(3);
  const len = new Uint32Array([12]);
  check(
    "getsockopt",
    libc.getsockopt(
      fd,
      SOL_SOCKET,
      SO_PEERCRED,
      new Uint8Array(cred.buffer),
      new Uint8Array(len.buffer),
    ),
    `SO_PEERCRED fd ${fd}`,
  );
  return { pid: cred[0], uid: cred[1] >>> 0, gid: cred[2] >>> 0 };
}

/** One fd to wait for, and what came (`revents`, 0 when nothing did). */
export interface PollEntry {
  fd: number;
  events: number;
}

function pollBuffer(entries: readonly PollEntry[]): Uint8Array {
  // struct pollfd { int fd; short events; short revents; }
  const buf = new Uint8Array(8 * entries.length);
  const view = new DataView(buf.buffer);
  entries.forEach((e, i) => {
    view.setInt32(8 * i, e.fd, true);
    view.setInt16(8 * i + 4, e.events, true);
  });
  return buf;
}

function revents(buf: Uint8Array, n: number): number[] {
  const view = new DataView(buf.buffer);
  return Array.from({ length: n }, (_, i) => view.getUint16(8 * i + 6, true));
}

/**
 * Waits (on a thread of Deno's, the JavaScript thread runs on) until one of `entries` is ready
 * or `timeoutMs` passed (-1: no limit). Resolves with each entry's revents (all 0 on timeout).
 */
export async function pollFds(entries: readonly PollEntry[], timeoutMs: number): Promise<number[]> {
  const buf = pollBuffer(entries);
  const deadline = timeoutMs < 0 ? Infinity : performance.now() + timeoutMs;
  for (;;) {
    const left = deadline === Infinity ? -1 : Math.max(0, Math.ceil(deadline - performance.now()));
    const rc = await libcMore().poll_async(buf, BigInt(entries.length), left);
    if (rc >= 0) return revents(buf, entries.length);
    const code = errno();
    if (code !== E.EINTR) throw new SysError("poll", code);
  }
}

/** {@linkcode pollFds}, blocking this thread: for the few milliseconds of a start-up handshake. */
export function pollFdsSync(entries: readonly PollEntry[], timeoutMs: number): number[] {
  const buf = pollBuffer(entries);
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const left = Math.max(0, Math.ceil(deadline - performance.now()));
    const rc = libc.poll(buf, BigInt(entries.length), left);
    if (rc >= 0) return revents(buf, entries.length);
    const code = errno();
    if (code !== E.EINTR) throw new SysError("poll", code);
  }
}

/**
 * Makes `target` refer to what `source` refers to (dup3(2); close-on-exec when asked), closing
 * whatever `target` was. `source` stays open and the caller's.
 */
export function placeFd(source: number, target: number, isCloseOnExec = false): void {
  check(
    "dup3",
    libcMore().dup3(source, target, isCloseOnExec ? O_CLOEXEC : 0),
    `${source} → ${target}`,
  );
}
