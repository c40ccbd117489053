/**
 * @module
 * errno numbers by name (Linux x86_64 and aarch64 agree on these) and `SysError`, the typed
 * error every failed system call becomes. Decides nothing about what a failure means.
 */
import { AppRunError } from "../errors.ts";

/** The errno values apprun tests for by name. */
export const E = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENOTDIR: 20,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  EFBIG: 27,
  ENOSPC: 28,
  EPIPE: 32,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  EPROTO: 71,
  EMSGSIZE: 90,
  ENOTSOCK: 88,
  EPROTOTYPE: 91,
  ENOPROTOOPT: 92,
  EOPNOTSUPP: 95,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETUNREACH: 101,
  ECONNABORTED: 103,
  ECONNRESET: 104,
  ENOBUFS: 105,
  EISCONN: 106,
  ENOTCONN: 107,
  ETOOMANYREFS: 109,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  EHOSTUNREACH: 113,
  EALREADY: 114,
  EINPROGRESS: 115,
} as const;

const NAMES = new Map<number, string>(Object.entries(E).map(([k, v]) => [v, k]));

/** `EAGAIN`, or `errno 77` for numbers without a name here. */
export function errnoName(code: number): string {
  return NAMES.get(code) ?? `errno ${code}`;
}

/** A failed system call: `call` names it, `errno` is its number, `errnoName` its name. */
export class SysError extends AppRunError {
  override name = "SysError";
  readonly call: string;
  readonly errno: number;
  readonly errnoName: string;
  constructor(call: string, errno: number, detail?: string) {
    const name = errnoName(errno);
    super("ERR_SYSCALL", `${call}${detail ? ` (${detail})` : ""} failed: ${name}`);
    this.call = call;
    this.errno = errno;
    this.errnoName = name;
  }
}
