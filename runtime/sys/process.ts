/**
 * @module
 * Processes: spawn a child with chosen fds at 3, 4, … (posix_spawn, the only safe way to fork
 * a multi-threaded runtime), replace this process with another program keeping its pid and its
 * inherited fds (execve), watch a child through a pidfd, reap it with waitid, signal it, and
 * raise RLIMIT_NOFILE. Callers own the pidfd they get back; the fds they pass stay theirs.
 */
import { addressOf, errno, libc, libcMore } from "./libc.ts";
import { E, SysError } from "./errno.ts";
import {
  CLD_EXITED,
  P_PIDFD,
  POSIX_SPAWN_SETPGROUP,
  POSIX_SPAWN_SETSIGDEF,
  POSIX_SPAWN_SETSIGMASK,
  RLIMIT_NOFILE,
  SYS_PIDFD_OPEN,
  WEXITED,
  WNOHANG,
} from "./constants.ts";
import { dupFd } from "./fd.ts";
import { closeFd } from "./socket.ts";

const enc = new TextEncoder();
const cstr = (s: string) => enc.encode(s + "\0");

/** Builds a NULL-terminated `char *[]`; `keep` holds the strings alive for the call. */
function cstrArray(items: readonly string[], keep: Uint8Array[]): Uint8Array {
  const arr = new BigUint64Array(items.length + 1);
  items.forEach((s, i) => {
    const b = cstr(s);
    keep.push(b);
    arr[i] = addressOf(b);
  });
  return new Uint8Array(arr.buffer);
}

/** Options for {@linkcode spawnProcess}. */
export interface SpawnOptions {
  /** Absolute path of the executable. */
  path: string;
  /** argv, including argv[0]. */
  args: readonly string[];
  env: Record<string, string>;
  /** fds to place at 3, 4, … in the child (still owned by the caller afterwards). */
  passFds?: readonly number[];
  /** Put the child in its own process group. */
  isNewProcessGroup?: boolean;
  /** The child's stderr (fd 2), instead of ours. Still owned by the caller afterwards. */
  stderrFd?: number;
}

/** Starts a child. Returns its pid; fds 0–2 are inherited (2 unless `stderrFd`). */
export function spawnProcess(opts: SpawnOptions): number {
  const keep: Uint8Array[] = [];
  const passFds = opts.passFds ?? [];
  const fa = new Uint8Array(256);
  const attr = new Uint8Array(512);
  libcMore().posix_spawn_file_actions_init(fa);
  libcMore().posix_spawnattr_init(attr);
  // Move every source fd above the target range first, so dup2 into 3.. never clobbers one.
  const staged = passFds.map((fd) => dupFd(fd, 3 + passFds.length));
  const stderr = opts.stderrFd === undefined ? null : dupFd(opts.stderrFd, 3 + passFds.length);
  if (stderr !== null) staged.push(stderr);
  try {
    passFds.forEach((_, i) => {
      const rc = libcMore().posix_spawn_file_actions_adddup2(fa, staged[i], 3 + i);
      if (rc !== 0) throw new SysError("posix_spawn_file_actions_adddup2", rc);
    });
    if (stderr !== null) {
      const rc = libcMore().posix_spawn_file_actions_adddup2(fa, stderr, 2);
      if (rc !== 0) throw new SysError("posix_spawn_file_actions_adddup2", rc);
    }
    // Deno's runtime ignores SIGPIPE and may block signals: the child starts with defaults.
    const all = new Uint8Array(128).fill(0xff);
    const none = new Uint8Array(128);
    libcMore().posix_spawnattr_setsigdefault(attr, all);
    libcMore().posix_spawnattr_setsigmask(attr, none);
    let flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
    if (opts.isNewProcessGroup) {
      flags |= POSIX_SPAWN_SETPGROUP;
      libcMore().posix_spawnattr_setpgroup(attr, 0);
    }
    libcMore().posix_spawnattr_setflags(attr, flags);
    const argv = cstrArray(opts.args, keep);
    const envp = cstrArray(Object.entries(opts.env).map(([k, v]) => `${k}=${v}`), keep);
    const pidBuf = new Int32Array(1);
    const rc = libcMore().posix_spawn(
      new Uint8Array(pidBuf.buffer),
      cstr(opts.path),
      fa,
      attr,
      argv,
      envp,
    );
    if (rc !== 0) throw new SysError("posix_spawn", rc, opts.path);
    return pidBuf[0];
  } finally {
    for (const fd of staged) closeFd(fd);
    libcMore().posix_spawn_file_actions_destroy(fa);
    libcMore().posix_spawnattr_destroy(attr);
  }
}

const SIG_SETMASK = 2;

/**
 * Replaces this process with `path` (execve(2)): same pid, so `LISTEN_PID` and a manager's
 * signals still reach the program; fds without FD_CLOEXEC (the passed ones at 3, 4, …) are
 * inherited. Unblocks every signal first, as a fresh process expects. Returns only by throwing.
 */
export function execProcess(
  path: string,
  args: readonly string[],
  env: Record<string, string>,
): never {
  const keep: Uint8Array[] = [];
  const argv = cstrArray(args, keep);
  const envp = cstrArray(Object.entries(env).map(([k, v]) => `${k}=${v}`), keep);
  libcMore().sigprocmask(SIG_SETMASK, new Uint8Array(128), null);
  libcMore().execve(cstr(path), argv, envp);
  throw new SysError("execve", errno(), path);
}

/** A pidfd for `pid` (readable when it exits). The caller owns it. */
export function pidfdOpen(pid: number): number {
  const rc = Number(libcMore().syscall(BigInt(SYS_PIDFD_OPEN), BigInt(pid), 0n));
  if (rc < 0) throw new SysError("pidfd_open", errno(), `pid ${pid}`);
  return rc;
}

/** How a child ended. */
export type ExitStatus = { code: number; signal: null } | { code: null; signal: number };

/** Reaps the child behind `pidfd` if it has exited; `null` while it still runs. */
export function reapPidfd(pidfd: number): ExitStatus | null {
  const info = new Uint8Array(128);
  if (libcMore().waitid(P_PIDFD, pidfd, info, WEXITED | WNOHANG) < 0) {
    const code = errno();
    if (code === E.ECHILD) return { code: null, signal: 0 };
    throw new SysError("waitid", code);
  }
  const v = new DataView(info.buffer);
  if (v.getInt32(16, true) === 0) return null;
  const siCode = v.getInt32(8, true);
  const status = v.getInt32(24, true);
  return siCode === CLD_EXITED ? { code: status, signal: null } : { code: null, signal: status };
}

/** Sends `signal` to `pid`. Returns false when the process is gone (ESRCH). */
export function sendSignal(pid: number, signal: number): boolean {
  if (libcMore().kill(pid, signal) === 0) return true;
  const code = errno();
  if (code === E.ESRCH) return false;
  throw new SysError("kill", code, `pid ${pid} signal ${signal}`);
}

/** Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit. */
export function raiseFdLimit(): number {
  const lim = new BigUint64Array(2);
  const bytes = new Uint8Array(lim.buffer);
  if (libc.getrlimit(RLIMIT_NOFILE, bytes) < 0) throw new SysError("getrlimit", errno());
  if (lim[0] < lim[1]) {
    lim[0] = lim[1];
    if (libc.setrlimit(RLIMIT_NOFILE, bytes) < 0) throw new SysError("setrlimit", errno());
  }
  return Number(lim[0]);
}

const PR_SET_PDEATHSIG = 1;
const PR_SET_CHILD_SUBREAPER = 36;

/**
 * Makes this process the reaper of its orphaned descendants (prctl(2) PR_SET_CHILD_SUBREAPER),
 * as a service manager is: a process whose parent exits is then re-parented to us, not to init.
 */
export function becomeChildSubreaper(): void {
  if (libc.prctl(PR_SET_CHILD_SUBREAPER, 1n, 0n, 0n, 0n) < 0) {
    throw new SysError("prctl", errno(), "PR_SET_CHILD_SUBREAPER");
  }
}

/** This process's parent pid (getppid(2)). */
export function parentPid(): number {
  return libc.getppid();
}

/**
 * Asks the kernel to send `signal` to this process when its parent dies (prctl(2)
 * PR_SET_PDEATHSIG). Returns false when the parent is already not `expectedParent`.
 */
export function dieWithParent(signal: number, expectedParent: number): boolean {
  if (libc.prctl(PR_SET_PDEATHSIG, BigInt(signal), 0n, 0n, 0n) < 0) {
    throw new SysError("prctl", errno(), "PR_SET_PDEATHSIG");
  }
  return libc.getppid() === expectedParent;
}

/** Signal numbers by name (Linux). */
export const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGABRT: 6,
};
