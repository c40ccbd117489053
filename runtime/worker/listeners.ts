/**
 * @module
 * Which listener each server of the app gets (docs/design.md, "Listeners"). Sockets a manager
 * passes (systemd's socket unit, apprun's supervisor with `--port`/`--unix`) or that apprun
 * opens from its own `--port`/`--unix` win over the port in the code: the n-th server the app
 * starts gets the n-th of them (`FileDescriptorName=` order), and a single server gets them all.
 * Without them, the code's port is used: a listener this process opened itself, or the one the
 * previous generation stored (matched by address, or by order for port 0), so a port survives
 * a handoff. Owns every listener it hands out until the worker closes them.
 */
import { adoptListener, type Listener, ListenError, openListeners, tcpAddr } from "../listen.ts";
import { ownListenerName } from "../handoff/mod.ts";
import type { SockAddr } from "../sys/mod.ts";
import type { Logger } from "../log.ts";
import type { ListenRequest } from "../deno/mod.ts";
import type { SortedFds } from "./fds.ts";

/** The listeners a worker starts with, handed out to the app's servers. */
export class ListenerPool {
  readonly #external: Listener[];
  readonly #stored: Listener[];
  readonly #opened: Listener[] = [];
  readonly #taken = new Set<Listener>();
  readonly #log: Logger;
  #nextExternal = 0;

  /**
   * From the fds the process was started with and apprun's own `--port`/`--unix` (which must
   * not be combined with passed listeners). Throws {@linkcode ListenError}.
   */
  constructor(
    sorted: SortedFds,
    opts: { port?: number; host?: string; unix: string[] },
    log: Logger,
  ) {
    this.#log = log;
    const fromManager = sorted.listeners.filter((p) => !sorted.ownListenerNames.has(p.name));
    if (fromManager.length > 0 && (opts.port !== undefined || opts.unix.length > 0)) {
      throw new ListenError(
        "ERR_LISTEN_FDS",
        "--port/--unix cannot be used under socket activation (LISTEN_FDS)",
      );
    }
    const stored = sorted.listeners
      .filter((p) => sorted.ownListenerNames.has(p.name))
      .map((p) => ({ ...adoptListener(p, true), name: ownListenerName(p.name) }));
    if (fromManager.length > 0) {
      this.#external = fromManager.map((p) => adoptListener(p));
      this.#stored = stored;
      return;
    }
    // Our own --port/--unix: the previous generation stored them (same name and address).
    const isCli = (l: Listener) =>
      (l.name === "http" && opts.port !== undefined) ||
      (l.name === "unix" && l.addr.transport === "unix" && opts.unix.includes(l.addr.path));
    const kept = stored.filter(isCli);
    const keptPaths = kept.flatMap((l) => l.addr.transport === "unix" ? [l.addr.path] : []);
    const hasPort = kept.some((l) => l.name === "http");
    this.#external = [
      ...kept,
      ...openListeners({
        port: hasPort ? undefined : opts.port,
        host: opts.host,
        unix: opts.unix.filter((p) => !keptPaths.includes(p)),
      }),
    ];
    this.#stored = stored.filter((l) => !isCli(l));
  }

  /** The listener for the next server, asking for `request`. Throws {@linkcode ListenError}. */
  take(request: ListenRequest): Listener {
    if (this.#nextExternal < this.#external.length) {
      const l = this.#external[this.#nextExternal++];
      if (request.transport === "unix" || !request.isDefault) {
        this.#log.info(
          `the app asks to listen on ${describe(request)}; it is served on ${l.name} ` +
            `(${describeAddr(l.addr)}): sockets from the manager or --port/--unix win`,
        );
      }
      return this.#give(l);
    }
    const stored = this.#findStored(request);
    if (stored !== undefined) return this.#give(stored);
    const l = openOwn(request);
    this.#opened.push(l);
    return this.#give(l);
  }

  /** Passed listeners no server took: the first server serves them too. */
  rest(): Listener[] {
    const rest = this.#external.slice(this.#nextExternal);
    this.#nextExternal = this.#external.length;
    for (const l of rest) this.#taken.add(l);
    return rest;
  }

  /** Listeners the previous generation stored that no server took (the code changed ports). */
  unusedStored(): Listener[] {
    return this.#stored.filter((l) => !this.#taken.has(l));
  }

  /** Every listener this process opened or took back from the store: it stores them at a handoff. */
  own(): Listener[] {
    return [...this.#stored, ...this.#opened, ...this.#external].filter((l) =>
      l.isOwned && this.#taken.has(l)
    );
  }

  /** Every listener handed out. */
  all(): Listener[] {
    return [...this.#taken];
  }

  #give(l: Listener): Listener {
    this.#taken.add(l);
    return l;
  }

  #findStored(request: ListenRequest): Listener | undefined {
    const free = this.#stored.filter((l) => !this.#taken.has(l));
    if (request.transport === "unix") {
      return free.find((l) => l.addr.transport === "unix" && l.addr.path === request.path);
    }
    const want = tcpAddr(request.hostname, request.port);
    const sameHost = free.filter((l) =>
      l.addr.transport === "tcp" && want.transport === "tcp" && l.addr.hostname === want.hostname
    );
    // Port 0 asks for any port: the one the previous generation got is as good, and keeps clients.
    return request.port === 0
      ? sameHost[0]
      : sameHost.find((l) => l.addr.transport === "tcp" && l.addr.port === request.port);
  }
}

/** Opens what the code asks for. Its name is stable across generations (carried connections name it). */
function openOwn(request: ListenRequest): Listener {
  const addr: SockAddr = request.transport === "unix"
    ? { transport: "unix", path: request.path }
    : tcpAddr(request.hostname, request.port);
  const [opened] = request.transport === "unix"
    ? openListeners({ unix: [request.path] })
    : openListeners({ port: request.port, host: request.hostname });
  const name = addr.transport === "unix"
    ? `unix-${safe(addr.path)}`
    : `tcp-${safe(addr.hostname)}-${opened.addr.transport === "tcp" ? opened.addr.port : 0}`;
  return { ...opened, name };
}

function safe(s: string): string {
  return s.replace(/[^A-Za-z0-9.]/g, "_").slice(0, 200);
}

function describe(r: ListenRequest): string {
  return r.transport === "unix" ? `unix:${r.path}` : `${r.hostname}:${r.port}`;
}

function describeAddr(a: SockAddr): string {
  return a.transport === "unix" ? `unix:${a.path}` : `${a.hostname}:${a.port}`;
}
