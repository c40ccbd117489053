/**
 * @module
 * Listeners as unit files name them: a TCP address (`ListenStream=127.0.0.1:8080`,
 * `[::1]:8080`, or a bare port for dual-stack) or a unix socket path. Parses the `--listen`
 * spelling, validates, and writes the `ListenStream=` value. Opens no socket: binding is
 * systemd's job (socket units) or the runtime's (`runtime/listen.ts`).
 */
import { checkAbsolutePath, checkFdName, checkPort, fail } from "./_validate.ts";

/** The fd name listeners get when none is given (`LISTEN_FDNAMES`, `FileDescriptorName=`). */
export const DEFAULT_FD_NAME = "http";

/**
 * One listening socket. `host` omitted means every address, IPv6 and IPv4 (systemd binds
 * `[::]:port` dual-stack). `name` becomes the fd's name in `LISTEN_FDNAMES`.
 */
export type Listener =
  | { kind: "tcp"; host?: string; port: number; name?: string }
  | { kind: "unix"; path: string; name?: string };

// sockaddr_un.sun_path is 108 bytes including the terminating NUL (unix(7)).
const SUN_PATH_MAX = 107;

/**
 * Parses `8080`, `127.0.0.1:8080`, `[::1]:8080` or `/run/app.sock` (the `--listen` forms).
 * Throws {@linkcode UnitOptionError} naming `option` when the spec fits none of them.
 */
export function parseListener(spec: string, option = "listen"): Listener {
  if (spec.startsWith("/")) return checkListener({ kind: "unix", path: spec }, option);
  if (/^\d+$/.test(spec)) return checkListener({ kind: "tcp", port: Number(spec) }, option);
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d+)$/.exec(spec);
  if (!m) {
    fail(option, `${JSON.stringify(spec)} is not PORT, HOST:PORT, [IPV6]:PORT or /unix/path`);
  }
  const host = m[1] ?? m[2];
  return checkListener({ kind: "tcp", host, port: Number(m[3]) }, option);
}

/** Validates a listener; returns it with its host in canonical form (`::1`, not `0:0::1`). */
export function checkListener(listener: Listener, option: string): Listener {
  if (listener === null || typeof listener !== "object") fail(option, "must be a listener object");
  const name = listener.name === undefined
    ? {}
    : { name: checkFdName(listener.name, `${option}.name`) };
  if (listener.kind === "unix") {
    const path = checkAbsolutePath(listener.path, `${option}.path`);
    const bytes = new TextEncoder().encode(path).length;
    if (bytes > SUN_PATH_MAX) {
      fail(`${option}.path`, `is ${bytes} bytes; a unix socket path holds at most ${SUN_PATH_MAX}`);
    }
    return { kind: "unix", path, ...name };
  }
  if (listener.kind !== "tcp") {
    fail(`${option}.kind`, `must be "tcp" or "unix", got ${JSON.stringify(listener["kind"])}`);
  }
  const port = checkPort(listener.port, `${option}.port`);
  if (listener.host === undefined) return { kind: "tcp", port, ...name };
  return { kind: "tcp", host: checkHost(listener.host, `${option}.host`), port, ...name };
}

/** An IP address literal; `ListenStream=` takes no host names (it does not resolve). */
function checkHost(host: unknown, option: string): string {
  if (typeof host !== "string" || host === "") fail(option, "must be an IP address");
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (v4) {
    const isValid = v4.slice(1).every((o) => Number(o) <= 255 && (o === "0" || o[0] !== "0"));
    if (!isValid) fail(option, `${JSON.stringify(host)} is not an IPv4 address`);
    return host;
  }
  if (host.includes(":")) {
    if (host.includes("%")) fail(option, `${JSON.stringify(host)}: zone ids are not supported`);
    try {
      // The URL parser implements RFC 4291 text forms and gives the RFC 5952 canonical one.
      return new URL(`http://[${host}]/`).hostname.slice(1, -1);
    } catch {
      fail(option, `${JSON.stringify(host)} is not an IPv6 address`);
    }
  }
  fail(
    option,
    `${JSON.stringify(host)} is not an IP address (ListenStream= does not resolve names)`,
  );
}

/** The `ListenStream=` value (systemd.socket(5)): `8080`, `1.2.3.4:80`, `[::1]:80`, a path. */
export function listenStreamValue(listener: Listener): string {
  if (listener.kind === "unix") return listener.path;
  if (listener.host === undefined) return String(listener.port);
  return listener.host.includes(":")
    ? `[${listener.host}]:${listener.port}`
    : `${listener.host}:${listener.port}`;
}

/** True for a TCP listener on a port below 1024 (binding needs CAP_NET_BIND_SERVICE). */
export function isPrivilegedPort(listener: Listener): boolean {
  return listener.kind === "tcp" && listener.port < 1024;
}

/** True for a listener that takes every IPv6 address, and IPv4 too unless IPv6-only. */
export function isIPv6Wildcard(listener: Listener): boolean {
  return listener.kind === "tcp" && (listener.host === undefined || listener.host === "::");
}

/**
 * The first pair of listeners that cannot both bind: the same address twice, or an IPv4
 * address on a port that a dual-stack wildcard also takes. `null` when they all can.
 */
export function findOverlap(
  listeners: readonly Listener[],
): { a: number; b: number; isDualStack: boolean } | null {
  for (let b = 0; b < listeners.length; b++) {
    for (let a = 0; a < b; a++) {
      const [la, lb] = [listeners[a], listeners[b]];
      if (listenStreamValue(la) === listenStreamValue(lb)) return { a, b, isDualStack: false };
      if (la.kind !== "tcp" || lb.kind !== "tcp" || la.port !== lb.port) continue;
      const isV4 = (l: Listener) =>
        l.kind === "tcp" && l.host !== undefined && !l.host.includes(":");
      if ((isIPv6Wildcard(la) && isV4(lb)) || (isIPv6Wildcard(lb) && isV4(la))) {
        return { a, b, isDualStack: true };
      }
      if (isIPv6Wildcard(la) && isIPv6Wildcard(lb)) return { a, b, isDualStack: false };
    }
  }
  return null;
}
