/**
 * @module
 * The notify socket: a unix datagram socket in a private 0700 directory, with SO_PASSCRED so
 * the kernel vouches for each sender's pid (SCM_CREDENTIALS). Receives one datagram at a time
 * and refuses, as systemd does, those without credentials, with truncated control data, too
 * long, or unparsable — closing the fds they carried. Owns the socket and the directory; the
 * fds of an accepted datagram belong to whoever takes the {@linkcode NotifyDatagram}.
 */
import {
  bindTo,
  closeFd,
  MSG_DONTWAIT,
  receiveMessage,
  SCM_MAX_FD,
  setIntOption,
  SO_PASSCRED,
  SO_RCVBUF,
  SOCK_DGRAM,
  SOL_SOCKET,
  unixSocket,
} from "../sys/mod.ts";
import { NOTIFY_BUFFER_MAX, splitNotifyMessage } from "./notify_message.ts";

/** One accepted message. `fds` are now owned by the taker. */
export interface NotifyDatagram {
  pid: number;
  tags: string[];
  fds: number[];
}

/** What one receive gave: a message, a refusal (fds already closed), or nothing pending. */
export type ReceiveResult = NotifyDatagram | { refused: string; pid: number | null } | "again";

/** sun_path holds 108 bytes with the terminating NUL. */
const SUN_PATH_MAX = 107;

/** systemd asks for 8 MiB (NOTIFY_RCVBUF_SIZE); the kernel caps it at rmem_max. */
const RCVBUF = 8 * 1024 * 1024;

/** The supervisor's end of the sd_notify protocol. */
export class NotifySocket {
  /** The value of `NOTIFY_SOCKET` for the worker. */
  readonly path: string;
  readonly fd: number;
  readonly #dir: string;

  private constructor(fd: number, dir: string) {
    this.fd = fd;
    this.#dir = dir;
    this.path = `${dir}/notify`;
  }

  /** Creates the private directory and binds the socket. Call {@linkcode close} to undo both. */
  static open(): NotifySocket {
    let dir = Deno.makeTempDirSync({ prefix: "apprun-supervisor-" });
    if (new TextEncoder().encode(`${dir}/notify`).length > SUN_PATH_MAX) {
      // A long $TMPDIR cannot hold a socket path (sun_path is 108 bytes): /tmp can.
      Deno.removeSync(dir);
      dir = Deno.makeTempDirSync({ dir: "/tmp", prefix: "apprun-supervisor-" });
    }
    let fd = -1;
    try {
      Deno.chmodSync(dir, 0o700);
      fd = unixSocket(SOCK_DGRAM);
      bindTo(fd, { transport: "unix", path: `${dir}/notify` });
      setIntOption(fd, SOL_SOCKET, SO_PASSCRED, 1);
      try {
        setIntOption(fd, SOL_SOCKET, SO_RCVBUF, RCVBUF);
      } catch {
        // A smaller queue only makes senders wait: not a reason to fail.
      }
      return new NotifySocket(fd, dir);
    } catch (err) {
      if (fd >= 0) closeFd(fd);
      Deno.removeSync(dir, { recursive: true });
      throw err;
    }
  }

  /** Receives one datagram without blocking. */
  receive(): ReceiveResult {
    // One byte more than the limit tells a too-long datagram from one that just fits.
    const msg = receiveMessage({
      fd: this.fd,
      maxBytes: NOTIFY_BUFFER_MAX + 1,
      maxFds: SCM_MAX_FD,
      flags: MSG_DONTWAIT,
    });
    if (msg === "again") return "again";
    const pid = msg.credentials?.pid ?? null;
    const refuse = (why: string) => {
      for (const fd of msg.fds) closeFd(fd);
      return { refused: why, pid };
    };
    if (msg.isControlTruncated) return refuse("its control data was truncated (too many fds?)");
    if (pid === null || pid <= 0) return refuse("it has no valid credentials");
    const split = splitNotifyMessage(msg.data);
    if ("refused" in split) return refuse(split.refused);
    return { pid, tags: split.tags, fds: msg.fds };
  }

  /** Closes the socket and removes its directory. */
  close(): void {
    closeFd(this.fd);
    try {
      Deno.removeSync(this.#dir, { recursive: true });
    } catch {
      // Already gone (a tmp cleaner): nothing left to undo.
    }
  }
}
