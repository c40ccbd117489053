/**
 * @module
 * Where listening sockets come from: inherited through socket activation (sd_listen_fds(3):
 * `LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`, fds from 3) or opened by us from `--port`,
 * `--host` and `--unix`. Checks that inherited state is ours (LISTEN_PID) before trusting it,
 * validates counts and names at the edge, and unsets the variables so children do not inherit
 * them. Owns nothing: every fd it returns belongs to the caller.
 */
import { AppRunError } from "./errors.ts";
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  closeFd,
  connectStream,
  localAddr,
  openListener,
  setCloseOnExec,
  setNonBlocking,
  SOCK_STREAM,
  type SockAddr,
  socketInfo,
  SysError,
} from "./sys/mod.ts";

/** sd_listen_fds(3): the first passed fd. */
export const SD_LISTEN_FDS_START = 3;

/** An fd passed by the service manager, with its name. */
export interface PassedFd {
  fd: number;
  name: string;
}

/** Errors about listeners. */
export class ListenError extends AppRunError {
  override name = "ListenError";
}

/** Options for {@linkcode takeListenFds}. */
export interface TakeListenFdsOptions {
  env?: { get(key: string): string | undefined; delete(key: string): void };
  pid?: number;
}

/**
 * Takes the fds passed by socket activation or the fdstore. Returns [] when the variables are
 * absent or meant for another process (LISTEN_PID). Unsets the three variables either way.
 * Throws {@linkcode ListenError} when they are malformed.
 */
export function takeListenFds(opts: TakeListenFdsOptions = {}): PassedFd[] {
  const env = opts.env ?? Deno.env;
  const pid = opts.pid ?? Deno.pid;
  const fdsVar = env.get("LISTEN_FDS");
  const pidVar = env.get("LISTEN_PID");
  const namesVar = env.get("LISTEN_FDNAMES");
  for (const k of ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"]) env.delete(k);
  if (fdsVar === undefined || pidVar === undefined) return [];
  if (!/^\d+$/.test(pidVar)) {
    throw new ListenError("ERR_LISTEN_FDS", `LISTEN_PID is not a pid: "${pidVar}"`);
  }
  if (Number(pidVar) !== pid) return [];
  if (!/^\d+$/.test(fdsVar)) {
    throw new ListenError("ERR_LISTEN_FDS", `LISTEN_FDS is not a count: "${fdsVar}"`);
  }
  const count = Number(fdsVar);
  if (count > 65536) {
    throw new ListenError("ERR_LISTEN_FDS", `LISTEN_FDS=${count} is more fds than can be passed`);
  }
  let names: string[];
  if (namesVar === undefined) names = Array(count).fill("unknown");
  else {
    names = count === 0 ? [] : namesVar.split(":");
    if (names.length !== count) {
      throw new ListenError(
        "ERR_LISTEN_FDS",
        `LISTEN_FDNAMES has ${names.length} names for LISTEN_FDS=${count}`,
      );
    }
  }
  const out: PassedFd[] = [];
  for (let i = 0; i < count; i++) {
    const fd = SD_LISTEN_FDS_START + i;
    try {
      setCloseOnExec(fd, true);
    } catch (err) {
      throw new ListenError(
        "ERR_LISTEN_BAD_FD",
        `LISTEN_FDS says fd ${fd} ("${names[i]}") is passed, but it is not open`,
        { cause: err },
      );
    }
    out.push({ fd, name: names[i] });
  }
  return out;
}

/** A listening socket ready to accept. */
export interface Listener {
  fd: number;
  /** FileDescriptorName= of its socket unit, or ours ("http", "unix"). */
  name: string;
  addr: SockAddr;
  /** We opened it (so the handoff must carry it); false when systemd passed it. */
  isOwned: boolean;
}

/**
 * Checks that a passed fd is a listening stream socket (TCP or unix) and makes it
 * nonblocking. Throws {@linkcode ListenError} naming the fd and what it is instead.
 */
export function adoptListener(passed: PassedFd, isOwned = false): Listener {
  const { fd, name } = passed;
  let info;
  try {
    info = socketInfo(fd);
  } catch (err) {
    throw new ListenError("ERR_LISTEN_BAD_FD", `fd ${fd} ("${name}") cannot be inspected`, {
      cause: err,
    });
  }
  const what = `fd ${fd} ("${name}")`;
  if (info === null) {
    throw new ListenError("ERR_LISTEN_BAD_FD", `${what} is not a socket: apprun serves sockets`);
  }
  if (info.type !== SOCK_STREAM) {
    const kind = info.type === 2 ? "a datagram" : info.type === 5 ? "a seqpacket" : "a non-stream";
    throw new ListenError(
      "ERR_LISTEN_BAD_FD",
      `${what} is ${kind} socket: apprun serves stream sockets (ListenStream=)`,
    );
  }
  if (info.domain !== AF_INET && info.domain !== AF_INET6 && info.domain !== AF_UNIX) {
    throw new ListenError("ERR_LISTEN_BAD_FD", `${what} is of address family ${info.domain}`);
  }
  if (!info.isListening) {
    throw new ListenError(
      "ERR_LISTEN_BAD_FD",
      `${what} is a connected socket, not a listening one (Accept=no is required)`,
    );
  }
  setNonBlocking(fd, true);
  return { fd, name, addr: localAddr(fd), isOwned };
}

/** Options for {@linkcode openListeners}. */
export interface OpenListenersOptions {
  port?: number;
  host?: string;
  unix?: string[];
  backlog?: number;
}

/** Opens the listeners asked for on the command line. The caller owns the fds. */
export function openListeners(opts: OpenListenersOptions): Listener[] {
  const out: Listener[] = [];
  try {
    if (opts.port !== undefined) {
      const addr = tcpAddr(opts.host ?? "0.0.0.0", opts.port);
      const fd = open(addr, opts.backlog);
      out.push({ fd, name: "http", addr: localAddr(fd), isOwned: true });
    }
    for (const path of opts.unix ?? []) {
      removeStaleSocket(path);
      const addr: SockAddr = { transport: "unix", path };
      const fd = open(addr, opts.backlog);
      out.push({ fd, name: "unix", addr, isOwned: true });
    }
  } catch (err) {
    for (const l of out) closeFd(l.fd);
    throw err;
  }
  return out;
}

function open(addr: SockAddr, backlog?: number): number {
  try {
    return openListener({ addr, backlog });
  } catch (err) {
    const where = addr.transport === "unix" ? addr.path : `${addr.hostname}:${addr.port}`;
    const why = err instanceof SysError ? err.errnoName : String(err);
    const hint = why === "EADDRINUSE" ? " (address already in use)" : "";
    throw new ListenError("ERR_LISTEN_OPEN", `cannot listen on ${where}: ${why}${hint}`, {
      cause: err,
    });
  }
}

/** A TCP address from a host literal ("localhost", IPv4, IPv6 with or without brackets). */
export function tcpAddr(host: string, port: number): SockAddr {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ListenError("ERR_LISTEN_OPEN", `port must be 0–65535, not ${port}`);
  }
  const h = host === "localhost" ? "127.0.0.1" : host.replace(/^\[(.*)\]$/, "$1");
  if (/^\d+\.\d+\.\d+\.\d+$/.test(h)) {
    return { transport: "tcp", family: "IPv4", hostname: h, port };
  }
  if (h.includes(":")) return { transport: "tcp", family: "IPv6", hostname: h, port };
  throw new ListenError(
    "ERR_LISTEN_OPEN",
    `host must be an IP address or "localhost", not "${host}"`,
  );
}

/**
 * A unix socket file left by a previous run makes bind fail: remove it, but only when nobody
 * listens on it any more (connect is refused) — never a live server's socket, never a non-socket.
 */
function removeStaleSocket(path: string): void {
  if (path.startsWith("@")) return;
  try {
    if (!Deno.lstatSync(path).isSocket) return;
  } catch {
    return; // absent: nothing to remove
  }
  try {
    closeFd(connectStream({ transport: "unix", path }));
    return; // someone answers: bind will report EADDRINUSE
  } catch (err) {
    if (err instanceof SysError && err.errnoName === "ECONNREFUSED") Deno.removeSync(path);
  }
}

/** `host:port`, `[v6]:port` or the unix path, for logs. */
export function formatAddr(addr: SockAddr): string {
  if (addr.transport === "unix") return `unix:${addr.path}`;
  return addr.family === "IPv6"
    ? `http://[${addr.hostname}]:${addr.port}`
    : `http://${addr.hostname}:${addr.port}`;
}
