/**
 * @module
 * Typed socket calls: open TCP and unix listeners, accept, inspect an inherited fd, read
 * socket addresses, shutdown and close. Every function that returns an fd hands its ownership
 * to the caller; nothing here keeps an fd.
 */
import { errno, libc, libcMore } from "./libc.ts";
import { E, SysError } from "./errno.ts";
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  IPPROTO_IPV6,
  IPPROTO_TCP,
  IPV6_V6ONLY,
  SO_ACCEPTCONN,
  SO_DOMAIN,
  SO_ERROR,
  SO_REUSEADDR,
  SO_TYPE,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
  TCP_NODELAY,
} from "./constants.ts";

/** A socket address as apprun reports it. */
export type SockAddr =
  | { transport: "tcp"; family: "IPv4" | "IPv6"; hostname: string; port: number }
  | { transport: "unix"; path: string };

const SOCKADDR_MAX = 128;
const intBuf = new Int32Array(1);
const intBytes = new Uint8Array(intBuf.buffer);
const lenBuf = new Uint32Array(1);
const lenBytes = new Uint8Array(lenBuf.buffer);
const addrBuf = new Uint8Array(SOCKADDR_MAX);

function check(call: string, rc: number, detail?: string): number {
  if (rc < 0) throw new SysError(call, errno(), detail);
  return rc;
}

/** Encodes a sockaddr for bind/connect. */
export function encodeSockAddr(addr: SockAddr): Uint8Array {
  if (addr.transport === "unix") {
    const path = new TextEncoder().encode(addr.path);
    // Abstract sockets ("@name") have a leading NUL and no terminator.
    const isAbstract = path[0] === 0x40;
    if (path.length > 107) {
      throw new SysError("bind", E.ENAMETOOLONG, `unix path longer than 107 bytes: ${addr.path}`);
    }
    const buf = new Uint8Array(2 + path.length + (isAbstract ? 0 : 1));
    new DataView(buf.buffer).setUint16(0, AF_UNIX, true);
    buf.set(path, 2);
    if (isAbstract) buf[2] = 0;
    return buf;
  }
  if (addr.family === "IPv6") {
    const buf = new Uint8Array(28);
    const v = new DataView(buf.buffer);
    v.setUint16(0, AF_INET6, true);
    v.setUint16(2, addr.port, false);
    buf.set(parseIPv6(addr.hostname), 8);
    return buf;
  }
  const buf = new Uint8Array(16);
  const v = new DataView(buf.buffer);
  v.setUint16(0, AF_INET, true);
  v.setUint16(2, addr.port, false);
  buf.set(parseIPv4(addr.hostname), 4);
  return buf;
}

/** Decodes a sockaddr of `len` bytes. */
export function decodeSockAddr(buf: Uint8Array, len: number): SockAddr {
  const v = new DataView(buf.buffer, buf.byteOffset, len);
  const family = len >= 2 ? v.getUint16(0, true) : 0;
  if (family === AF_INET) {
    return {
      transport: "tcp",
      family: "IPv4",
      hostname: `${buf[4]}.${buf[5]}.${buf[6]}.${buf[7]}`,
      port: v.getUint16(2, false),
    };
  }
  if (family === AF_INET6) {
    return {
      transport: "tcp",
      family: "IPv6",
      hostname: formatIPv6(buf.subarray(8, 24)),
      port: v.getUint16(2, false),
    };
  }
  if (family === AF_UNIX) {
    let path = buf.subarray(2, len);
    if (path[0] === 0) {
      return { transport: "unix", path: "@" + new TextDecoder().decode(path.subarray(1)) };
    }
    const nul = path.indexOf(0);
    if (nul >= 0) path = path.subarray(0, nul);
    return { transport: "unix", path: new TextDecoder().decode(path) };
  }
  return { transport: "unix", path: "" };
}

function parseIPv4(host: string): Uint8Array {
  const parts = host.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new SysError("inet_pton", E.EINVAL, `not an IPv4 address: ${host}`);
  }
  return new Uint8Array(parts);
}

function parseIPv6(host: string): Uint8Array {
  const h = host.replace(/^\[|\]$/g, "");
  const out = new Uint8Array(16);
  const v4 = h.match(/^(.*:)(\d+\.\d+\.\d+\.\d+)$/);
  let text = h;
  if (v4) {
    out.set(parseIPv4(v4[2]), 12);
    text = v4[1] + "0:0";
  }
  const halves = text.split("::");
  if (halves.length > 2) throw new SysError("inet_pton", E.EINVAL, `not an IPv6 address: ${host}`);
  const head = halves[0] ? halves[0].split(":") : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const groups = halves.length === 2
    ? [...head, ...Array(8 - head.length - tail.length).fill("0"), ...tail]
    : head;
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) {
    throw new SysError("inet_pton", E.EINVAL, `not an IPv6 address: ${host}`);
  }
  const saved = v4 ? out.slice(12) : null;
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  });
  if (saved) out.set(saved, 12);
  return out;
}

function formatIPv6(b: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i] << 8) | b[i + 1]);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  // RFC 5952 §4.2: compress the longest run (≥ 2) of zero groups.
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(":");
  return hex.slice(0, best).join(":") + "::" + hex.slice(best + bestLen).join(":");
}

/** Options for {@linkcode openListener}. */
export interface OpenListenerOptions {
  addr: SockAddr;
  backlog?: number;
}

/** Opens a nonblocking, close-on-exec listening socket. The caller owns the returned fd. */
export function openListener({ addr, backlog = 4096 }: OpenListenerOptions): number {
  const domain = addr.transport === "unix" ? AF_UNIX : addr.family === "IPv6" ? AF_INET6 : AF_INET;
  const fd = check("socket", libc.socket(domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  try {
    if (addr.transport === "tcp") {
      setIntOption(fd, SOL_SOCKET, SO_REUSEADDR, 1);
      if (addr.family === "IPv6") setIntOption(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    }
    const sa = encodeSockAddr(addr);
    const where = addr.transport === "unix" ? addr.path : `${addr.hostname}:${addr.port}`;
    check("bind", libc.bind(fd, sa, sa.length), where);
    check("listen", libc.listen(fd, backlog), where);
    return fd;
  } catch (err) {
    libc.close(fd);
    throw err;
  }
}

/** Sets an int socket option. */
export function setIntOption(fd: number, level: number, name: number, value: number): void {
  intBuf[0] = value;
  check("setsockopt", libc.setsockopt(fd, level, name, intBytes, 4));
}

/** Reads an int socket option. */
export function getIntOption(fd: number, level: number, name: number): number {
  lenBuf[0] = 4;
  check("getsockopt", libc.getsockopt(fd, level, name, intBytes, lenBytes));
  return intBuf[0];
}

/** Disables Nagle on a TCP socket; a no-op on other sockets. */
export function setNoDelay(fd: number): void {
  intBuf[0] = 1;
  libc.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, intBytes, 4);
}

/** What an inherited fd is, or `null` when it is not a socket. */
export interface SocketInfo {
  domain: number;
  type: number;
  isListening: boolean;
}

/** Inspects an fd. Returns `null` for a non-socket (ENOTSOCK) and throws on EBADF. */
export function socketInfo(fd: number): SocketInfo | null {
  lenBuf[0] = 4;
  if (libc.getsockopt(fd, SOL_SOCKET, SO_TYPE, intBytes, lenBytes) < 0) {
    const code = errno();
    if (code === E.ENOTSOCK) return null;
    throw new SysError("getsockopt", code, `fd ${fd}`);
  }
  const type = intBuf[0];
  const domain = getIntOption(fd, SOL_SOCKET, SO_DOMAIN);
  const isListening = getIntOption(fd, SOL_SOCKET, SO_ACCEPTCONN) === 1;
  return { domain, type, isListening };
}

/** The pending socket error (SO_ERROR), 0 when none. */
export function socketError(fd: number): number {
  return getIntOption(fd, SOL_SOCKET, SO_ERROR);
}

/** The local address of a socket. */
export function localAddr(fd: number): SockAddr {
  lenBuf[0] = SOCKADDR_MAX;
  check("getsockname", libc.getsockname(fd, addrBuf, lenBytes), `fd ${fd}`);
  return decodeSockAddr(addrBuf, lenBuf[0]);
}

/** The raw sockaddr bytes getsockname(2) gives, or null on failure. */
export function rawLocalAddr(fd: number): Uint8Array | null {
  lenBuf[0] = SOCKADDR_MAX;
  if (libc.getsockname(fd, addrBuf, lenBytes) < 0) return null;
  return addrBuf.slice(0, lenBuf[0]);
}

/** The raw sockaddr bytes getpeername(2) gives, or null (not connected, or gone). */
export function rawPeerAddr(fd: number): Uint8Array | null {
  lenBuf[0] = SOCKADDR_MAX;
  if (libc.getpeername(fd, addrBuf, lenBytes) < 0) return null;
  return addrBuf.slice(0, lenBuf[0]);
}

/** The peer address of a connected socket, or `null` when it has none (ENOTCONN). */
export function peerAddr(fd: number): SockAddr | null {
  lenBuf[0] = SOCKADDR_MAX;
  if (libc.getpeername(fd, addrBuf, lenBytes) < 0) {
    const code = errno();
    if (code === E.ENOTCONN) return null;
    throw new SysError("getpeername", code, `fd ${fd}`);
  }
  return decodeSockAddr(addrBuf, lenBuf[0]);
}

/** Result of {@linkcode accept}: a new fd, or why there is none. */
export type AcceptResult = number | "again" | "limit" | "aborted";

const acceptLenBuf = new Uint32Array(1);
const acceptLenBytes = new Uint8Array(acceptLenBuf.buffer);
const acceptAddrBuf = new Uint8Array(SOCKADDR_MAX);

/**
 * Accepts one connection (nonblocking, close-on-exec). The caller owns the returned fd; the
 * peer's address comes with it ({@linkcode acceptedPeer}), so that nobody needs to ask a
 * closed, perhaps reused, fd for it later.
 * "again": nothing pending; "limit": out of fds (EMFILE/ENFILE/ENOBUFS/ENOMEM); "aborted":
 * the peer went away before we accepted.
 */
export function accept(listenFd: number): AcceptResult {
  acceptLenBuf[0] = SOCKADDR_MAX;
  const fd = libc.accept4(listenFd, acceptAddrBuf, acceptLenBytes, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd >= 0) return fd;
  const code = errno();
  switch (code) {
    case E.EAGAIN:
      return "again";
    case E.EMFILE:
    case E.ENFILE:
    case E.ENOBUFS:
    case E.ENOMEM:
      return "limit";
    case E.ECONNABORTED:
    case E.EPROTO:
    case E.EINTR:
      return "aborted";
    default:
      throw new SysError("accept4", code, `listener fd ${listenFd}`);
  }
}

/** The raw sockaddr of the peer of the fd {@linkcode accept} returned last (a copy). */
export function acceptedPeer(): Uint8Array {
  return acceptAddrBuf.slice(0, Math.min(acceptLenBuf[0], SOCKADDR_MAX));
}

/** Connects a new blocking stream socket to `addr` (used by tests and tools). Caller owns it. */
export function connectStream(addr: SockAddr): number {
  const domain = addr.transport === "unix" ? AF_UNIX : addr.family === "IPv6" ? AF_INET6 : AF_INET;
  const fd = check("socket", libc.socket(domain, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const sa = encodeSockAddr(addr);
  if (libc.connect(fd, sa, sa.length) < 0) {
    const code = errno();
    libc.close(fd);
    throw new SysError("connect", code);
  }
  return fd;
}

/** shutdown(2); errors (ENOTCONN after a reset) are ignored: the fd is on its way out. */
export function shutdown(fd: number, how: number): void {
  libc.shutdown(fd, how);
}

/** close(2). EINTR and EBADF are not actionable on Linux: the fd is gone either way. */
export function closeFd(fd: number): void {
  libc.close(fd);
}

/** Opens an AF_UNIX socket of `type` (SOCK_DGRAM, SOCK_SEQPACKET…). Caller owns it. */
export function unixSocket(type: number): number {
  return check("socket", libc.socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
}

/** Binds an fd to `addr`. */
export function bindTo(fd: number, addr: SockAddr): void {
  const sa = encodeSockAddr(addr);
  check("bind", libc.bind(fd, sa, sa.length), addr.transport === "unix" ? addr.path : undefined);
}

/** A connected pair of AF_UNIX sockets of `type`. The caller owns both fds. */
export function socketPair(type: number): [number, number] {
  const fds = new Int32Array(2);
  check(
    "socketpair",
    libcMore().socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, new Uint8Array(fds.buffer)),
  );
  return [fds[0], fds[1]];
}
