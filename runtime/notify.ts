/**
 * @module
 * sd_notify(3) from TypeScript: one datagram per message to `$NOTIFY_SOCKET` (a path, or an
 * abstract name when it starts with `@`), newline-separated `KEY=VALUE` lines, fds attached as
 * SCM_RIGHTS. No `NOTIFY_SOCKET` is "not applicable", not an error: {@linkcode Notifier.fromEnv}
 * returns null. Owns its datagram socket; never owns the fds it sends.
 */
import { AppRunError } from "./errors.ts";
import {
  closeFd,
  libc,
  pipe,
  SCM_MAX_FD,
  sendMessage,
  SOCK_DGRAM,
  type SockAddr,
  SysError,
  unixSocket,
} from "./sys/mod.ts";

/**
 * The variables a service manager sets for the one process it runs (sd_listen_fds(3),
 * sd_notify(3), sd_watchdog_enabled(3)), plus the supervisor's own: never inherited by a
 * command that is not that process.
 */
export const MANAGER_PROTOCOL_ENV: readonly string[] = [
  "NOTIFY_SOCKET",
  "LISTEN_FDS",
  "LISTEN_PID",
  "LISTEN_FDNAMES",
  "WATCHDOG_USEC",
  "WATCHDOG_PID",
  "APPRUN_SUPERVISOR_PID",
];

/** Misuse of the notify protocol (a bad FDNAME, too many fds). */
export class NotifyError extends AppRunError {
  override name = "NotifyError";
  constructor(message: string, options?: ErrorOptions) {
    super("ERR_NOTIFY", message, options);
  }
}

/** Checks an FDNAME= value (sd_notify(3): ≤ 255 printable ASCII characters, no ':'). */
export function checkFdName(name: string): void {
  if (name.length === 0 || name.length > 255) {
    throw new NotifyError(`FDNAME must be 1–255 characters, got ${name.length}`);
  }
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x3a) {
      throw new NotifyError(
        `FDNAME "${name}" has a character that is not allowed (':' or non-printable)`,
      );
    }
  }
}

/** Options for {@linkcode Notifier.fdstore}. */
export interface FdStoreOptions {
  name: string;
  fds: readonly number[];
  /** FDPOLL=0: systemd must not watch these fds for hangups (sd_notify(3), systemd ≥ 246). */
  isPollDisabled?: boolean;
}

/** A connection to the service manager's notify socket. */
export class Notifier {
  readonly socketPath: string;
  #fd = -1;

  private constructor(socketPath: string) {
    this.socketPath = socketPath;
  }

  /** The notifier for `$NOTIFY_SOCKET`, or null when the variable is absent. */
  static fromEnv(env: { get(k: string): string | undefined } = Deno.env): Notifier | null {
    const path = env.get("NOTIFY_SOCKET");
    if (!path) return null;
    if (!path.startsWith("/") && !path.startsWith("@")) {
      throw new NotifyError(`NOTIFY_SOCKET must be an absolute path or @abstract: "${path}"`);
    }
    return new Notifier(path);
  }

  /** Sends `lines` (KEY=VALUE each) with optional fds. Throws {@linkcode SysError} on failure. */
  send(lines: readonly string[], fds: readonly number[] = []): void {
    if (fds.length > SCM_MAX_FD) {
      throw new NotifyError(`${fds.length} fds in one message: at most ${SCM_MAX_FD} (SCM_MAX_FD)`);
    }
    for (const l of lines) {
      if (l.includes("\n")) {
        throw new NotifyError(`notify line contains a newline: ${JSON.stringify(l)}`);
      }
    }
    if (this.#fd < 0) this.#fd = unixSocket(SOCK_DGRAM);
    const to: SockAddr = { transport: "unix", path: this.socketPath };
    const data = new TextEncoder().encode(lines.join("\n") + "\n");
    const rc = sendMessage({ fd: this.#fd, data, fds, to });
    if (rc === "again") throw new SysError("sendmsg", 11, "notify socket full");
  }

  ready(status?: string): void {
    this.send(status ? ["READY=1", `STATUS=${status}`] : ["READY=1"]);
  }

  /** `RELOADING=1` is not used: apprun reloads by restarting through the fdstore. */
  stopping(status?: string): void {
    this.send(status ? ["STOPPING=1", `STATUS=${status}`] : ["STOPPING=1"]);
  }

  status(text: string): void {
    this.send([`STATUS=${text.replaceAll("\n", " ")}`]);
  }

  watchdog(): void {
    this.send(["WATCHDOG=1"]);
  }

  /** Asks for `usec` more microseconds before the start/stop timeout fires. */
  extendTimeout(usec: number): void {
    this.send([`EXTEND_TIMEOUT_USEC=${Math.max(0, Math.floor(usec))}`]);
  }

  /** Tells the manager who the main process is (used by a supervisor-less re-exec). */
  mainPid(pid: number): void {
    this.send([`MAINPID=${pid}`]);
  }

  /** Stores fds under one name (FDSTORE=1). The fds stay ours to close. */
  fdstore(opts: FdStoreOptions): void {
    checkFdName(opts.name);
    const lines = ["FDSTORE=1", `FDNAME=${opts.name}`];
    if (opts.isPollDisabled) lines.push("FDPOLL=0");
    this.send(lines, opts.fds);
  }

  /** Removes every stored fd of `name` (FDSTOREREMOVE=1). */
  fdstoreRemove(name: string): void {
    checkFdName(name);
    this.send(["FDSTOREREMOVE=1", `FDNAME=${name}`]);
  }

  /**
   * BARRIER=1: waits until the manager has processed every message sent before (it closes the
   * pipe end we pass). Returns false on timeout. Blocks the thread for at most `timeoutMs`.
   */
  barrier(timeoutMs = 5000): boolean {
    const [r, w] = pipe();
    try {
      this.send(["BARRIER=1"], [w]);
    } catch (err) {
      closeFd(r);
      throw err;
    } finally {
      closeFd(w);
    }
    try {
      // Wait for POLLHUP on the read end: struct pollfd { int fd; short events; short revents; }
      const pfd = new Uint8Array(8);
      new DataView(pfd.buffer).setInt32(0, r, true);
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const left = deadline - Date.now();
        if (left <= 0) return false;
        const rc = libc.poll(pfd, 1n, left);
        if (rc > 0) return true;
        if (rc === 0) return false;
      }
    } finally {
      closeFd(r);
    }
  }

  close(): void {
    if (this.#fd >= 0) closeFd(this.#fd);
    this.#fd = -1;
  }
}
