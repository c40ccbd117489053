/**
 * @module
 * sendmsg/recvmsg with SCM_RIGHTS (fd passing) and SCM_CREDENTIALS (sender pid/uid/gid).
 * Builds msghdr, iovec and cmsg structures in plain buffers. fds received are owned by the
 * caller (they arrive close-on-exec); fds sent stay owned by the caller too (the kernel dups).
 */
import { addressOf, errno, libc } from "./libc.ts";
import { E, SysError } from "./errno.ts";
import {
  MSG_CMSG_CLOEXEC,
  MSG_CTRUNC,
  MSG_NOSIGNAL,
  SCM_CREDENTIALS,
  SCM_RIGHTS,
  SOL_SOCKET,
} from "./constants.ts";
import { encodeSockAddr, type SockAddr } from "./socket.ts";

/** The kernel's per-message fd limit (SCM_MAX_FD). */
export const SCM_MAX_FD = 253;

/** A sender's credentials as the kernel vouches for them. */
export interface Credentials {
  pid: number;
  uid: number;
  gid: number;
}

const CMSG_HDR = 16;
const align8 = (n: number) => (n + 7) & ~7;
const cmsgSpace = (n: number) => CMSG_HDR + align8(n);

/** Options for {@linkcode sendMessage}. */
export interface SendMessageOptions {
  /** The socket to send on. Not closed. */
  fd: number;
  data: Uint8Array;
  /** fds to pass (≤ 253). Still owned by the caller afterwards. */
  fds?: readonly number[];
  /** Destination for an unconnected datagram socket. */
  to?: SockAddr;
  /** Attach our own credentials explicitly (SCM_CREDENTIALS). */
  credentials?: Credentials;
  flags?: number;
}

/**
 * Sends one message. Returns the byte count, or -EAGAIN-style `"again"` when a nonblocking
 * socket is full. Throws {@linkcode SysError} on other failures.
 */
export function sendMessage(opts: SendMessageOptions): number | "again" {
  const fds = opts.fds ?? [];
  if (fds.length > SCM_MAX_FD) {
    throw new SysError("sendmsg", E.EINVAL, `${fds.length} fds exceed SCM_MAX_FD (${SCM_MAX_FD})`);
  }
  const name = opts.to ? encodeSockAddr(opts.to) : null;
  const iov = new Uint8Array(16);
  const iovView = new DataView(iov.buffer);
  const data = opts.data.byteLength > 0 ? opts.data : new Uint8Array(0);
  iovView.setBigUint64(0, data.byteLength > 0 ? addressOf(data) : 0n, true);
  iovView.setBigUint64(8, BigInt(data.byteLength), true);

  const controlLen = (fds.length ? cmsgSpace(4 * fds.length) : 0) +
    (opts.credentials ? cmsgSpace(12) : 0);
  const control = new Uint8Array(Math.max(controlLen, 8));
  const cv = new DataView(control.buffer);
  let off = 0;
  if (fds.length) {
    cv.setBigUint64(off, BigInt(CMSG_HDR + 4 * fds.length), true);
    cv.setInt32(off + 8, SOL_SOCKET, true);
    cv.setInt32(off + 12, SCM_RIGHTS, true);
    // One copy, not a call per fd: a bundle passes thousands (little-endian hosts only).
    new Int32Array(control.buffer, off + CMSG_HDR, fds.length).set(fds);
    off += cmsgSpace(4 * fds.length);
  }
  if (opts.credentials) {
    cv.setBigUint64(off, BigInt(CMSG_HDR + 12), true);
    cv.setInt32(off + 8, SOL_SOCKET, true);
    cv.setInt32(off + 12, SCM_CREDENTIALS, true);
    cv.setInt32(off + 16, opts.credentials.pid, true);
    cv.setUint32(off + 20, opts.credentials.uid, true);
    cv.setUint32(off + 24, opts.credentials.gid, true);
  }

  const msg = new Uint8Array(56);
  const mv = new DataView(msg.buffer);
  if (name) {
    mv.setBigUint64(0, addressOf(name), true);
    mv.setUint32(8, name.byteLength, true);
  }
  mv.setBigUint64(16, addressOf(iov), true);
  mv.setBigUint64(24, 1n, true);
  if (controlLen) {
    mv.setBigUint64(32, addressOf(control), true);
    mv.setBigUint64(40, BigInt(controlLen), true);
  }
  const rc = libc.sendmsg(opts.fd, msg, (opts.flags ?? 0) | MSG_NOSIGNAL);
  if (rc < 0) {
    const code = errno();
    if (code === E.EAGAIN) return "again";
    throw new SysError("sendmsg", code);
  }
  // Keep the buffers alive across the call (their addresses are inside msg).
  void [data, name, control];
  return rc;
}

/** One received message. */
export interface ReceivedMessage {
  /** Bytes received (0 with no fds means end of stream). */
  data: Uint8Array;
  /** fds received, now owned by the caller. */
  fds: number[];
  credentials: Credentials | null;
  /** The kernel dropped control data (too many fds for our buffer): those fds are lost. */
  isControlTruncated: boolean;
}

/** Options for {@linkcode receiveMessage}. */
export interface ReceiveMessageOptions {
  fd: number;
  /** Largest payload accepted. */
  maxBytes?: number;
  /** Most fds accepted in one message. */
  maxFds?: number;
  flags?: number;
}

/**
 * Receives one message, or `"again"` when a nonblocking socket has none. Received fds are
 * close-on-exec and owned by the caller.
 */
export function receiveMessage(opts: ReceiveMessageOptions): ReceivedMessage | "again" {
  const maxBytes = opts.maxBytes ?? 65536;
  const maxFds = opts.maxFds ?? SCM_MAX_FD;
  const data = new Uint8Array(maxBytes);
  const iov = new Uint8Array(16);
  const iovView = new DataView(iov.buffer);
  iovView.setBigUint64(0, addressOf(data), true);
  iovView.setBigUint64(8, BigInt(maxBytes), true);
  const controlLen = cmsgSpace(4 * maxFds) + cmsgSpace(12);
  const control = new Uint8Array(controlLen);
  const msg = new Uint8Array(56);
  const mv = new DataView(msg.buffer);
  mv.setBigUint64(16, addressOf(iov), true);
  mv.setBigUint64(24, 1n, true);
  mv.setBigUint64(32, addressOf(control), true);
  mv.setBigUint64(40, BigInt(controlLen), true);
  const rc = libc.recvmsg(opts.fd, msg, (opts.flags ?? 0) | MSG_CMSG_CLOEXEC);
  if (rc < 0) {
    const code = errno();
    if (code === E.EAGAIN) return "again";
    throw new SysError("recvmsg", code);
  }
  const fds: number[] = [];
  let credentials: Credentials | null = null;
  const usedControl = Number(mv.getBigUint64(40, true));
  const cv = new DataView(control.buffer);
  for (let off = 0; off + CMSG_HDR <= usedControl;) {
    const len = Number(cv.getBigUint64(off, true));
    if (len < CMSG_HDR) break;
    const level = cv.getInt32(off + 8, true);
    const type = cv.getInt32(off + 12, true);
    if (level === SOL_SOCKET && type === SCM_RIGHTS) {
      const count = Math.floor((len - CMSG_HDR) / 4);
      fds.push(...new Int32Array(control.buffer, off + CMSG_HDR, count));
    } else if (level === SOL_SOCKET && type === SCM_CREDENTIALS && len >= CMSG_HDR + 12) {
      credentials = {
        pid: cv.getInt32(off + 16, true),
        uid: cv.getUint32(off + 20, true),
        gid: cv.getUint32(off + 24, true),
      };
    }
    off += align8(len);
  }
  const flags = mv.getInt32(48, true);
  return {
    data: data.slice(0, rc),
    fds,
    credentials,
    isControlTruncated: (flags & MSG_CTRUNC) !== 0,
  };
}
