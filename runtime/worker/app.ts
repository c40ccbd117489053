/**
 * @module
 * The app as its worker sees it: the servers it asks for — each `Deno.serve` call, or the main
 * module's default export as `deno serve` takes it — and the moment it is loaded. The app is
 * Deno's main module, run after the worker's preload; it is loaded once it asked for a server
 * (every `Deno.serve` made in the same turn counts) or its main module finished evaluating.
 * An error before that (a throw at import, a rejected top-level await, no server at all) is a
 * failed load: one line, and the worker exits before touching a handoff bundle. Servers asked
 * for later are served as they come. Owns the bindings; the listeners come from the pool.
 */
import type { ServeBinding, Server } from "../server.ts";
import type { Listener } from "../listen.ts";
import type { Logger } from "../log.ts";
import { describeError } from "../errors.ts";
import { findHooks, type SessionHooks } from "../hooks.ts";
import { defaultServer, HandlerError, loadFailure, SHAPES } from "../handler.ts";
import type { BoundServe, ListenRequest, ServeAddr, ServeCall, ServeHost } from "../deno/mod.ts";
import { DEFAULTS } from "../defaults.ts";

/** Where the app's servers get their listeners: the worker's pool, or a loop's copy of it. */
export interface ListenerSource {
  /** The listener for the next server, asking for `request`. */
  take(request: ListenRequest): Listener;
  /** Listeners no server took: the first server serves them too. */
  rest(): Listener[];
}

/** One server of the app. */
interface AppServerEntry {
  binding: ServeBinding;
  /** What the app asked for; null for the default export. */
  call: ServeCall | null;
  stopped: PromiseWithResolvers<void>;
  isStopping: boolean;
}

/** Options for {@linkcode WorkerApp}. */
export interface WorkerAppOptions {
  /** The app's main module path, for messages. */
  path: string;
  /** Where listeners come from; null in check mode (nothing is bound). */
  pool: ListenerSource | null;
  /**
   * False in a loop's Worker (worker/loops.ts): the app is not Deno's main module there, its
   * module is given with {@linkcode WorkerApp.useModule}. Default true.
   */
  isMainModule?: boolean;
  log: Logger;
  /** Every server the app started has been shut down by the app. */
  onAllStopped(): void;
}

/** The app's servers, and when the app is loaded. */
export class WorkerApp implements ServeHost {
  /** The app's session hooks, filled in once its main module's exports are known. */
  readonly hooks: SessionHooks = {};
  readonly #opts: WorkerAppOptions;
  readonly #entries: AppServerEntry[] = [];
  readonly #loaded = Promise.withResolvers<void>();
  #isLoaded = false;
  #isSettling = false;
  #server: Server | null = null;
  /** The default export's object (for `deno serve`'s `onListen`), when it serves. */
  #defaultModule: Record<string, unknown> | null = null;

  constructor(opts: WorkerAppOptions) {
    this.#opts = opts;
    this.#loaded.promise.catch(() => {}); // observed by whoever awaits `loaded`
    if (opts.isMainModule !== false) {
      globalThis.addEventListener("load", () => void this.#onMainEvaluated());
    }
  }

  /** Resolves once the app is loaded; rejects with a {@linkcode HandlerError} if it fails first. */
  get loaded(): Promise<void> {
    return this.#loaded.promise;
  }

  get isLoaded(): boolean {
    return this.#isLoaded;
  }

  /** The servers so far, in the order the app asked for them. */
  get bindings(): ServeBinding[] {
    return this.#entries.map((e) => e.binding);
  }

  /** The app failed while loading (an error it left unhandled): the load fails with it. */
  failLoad(err: unknown): void {
    if (this.#isLoaded) return;
    this.#isLoaded = true;
    this.#loaded.reject(err instanceof HandlerError ? err : loadFailure(this.#opts.path, err));
  }

  /** From now on new servers are served at once by `server`. */
  attach(server: Server): void {
    this.#server = server;
  }

  /** Calls the default export's `onListen` (as `deno serve` does) with its first listener. */
  callDefaultOnListen(): void {
    const mod = this.#defaultModule;
    const entry = this.#entries.find((e) => e.call === null);
    if (mod === null || entry === undefined || typeof mod.onListen !== "function") return;
    try {
      (mod.onListen as (a: ServeAddr) => void).call(mod, toServeAddr(entry.binding.listeners[0]));
    } catch (err) {
      this.#opts.log.error(`onListen failed: ${describeError(err)}`);
    }
  }

  // --- ServeHost (Deno.serve) ---

  serve(call: ServeCall): BoundServe {
    const entry = this.#add(call.handler, call.listen, call);
    if (!this.#isLoaded && !this.#isSettling) {
      // Servers asked for in the same turn (several Deno.serve calls in a row) start together.
      this.#isSettling = true;
      nextTurn(() => this.#settle());
    }
    return {
      addr: toServeAddr(entry.binding.listeners[0]),
      finished: entry.stopped.promise,
      shutdown: () => this.#stop(entry),
    };
  }

  #add(handler: ServeBinding["handler"], listen: ListenRequest, call: ServeCall | null) {
    const pool = this.#opts.pool;
    const listeners = pool === null ? [placeholder(listen)] : [pool.take(listen)];
    const entry: AppServerEntry = {
      binding: { handler, listeners },
      call,
      stopped: Promise.withResolvers<void>(),
      isStopping: false,
    };
    this.#entries.push(entry);
    this.#server?.addBinding(entry.binding);
    return entry;
  }

  /** The app's module is `namespace`, already evaluated (the handler a compiled binary carries). */
  useModule(namespace: Record<string, unknown>): void {
    queueMicrotask(() => this.#fromNamespace(namespace));
  }

  /** The main module finished evaluating: its exports are known. */
  async #onMainEvaluated(): Promise<void> {
    if (this.#isLoaded && this.#entries.length === 0) return; // failed already
    let namespace: Record<string, unknown>;
    try {
      namespace = await import(Deno.mainModule);
    } catch (err) {
      return this.failLoad(err);
    }
    this.#fromNamespace(namespace);
  }

  /**
   * The module's exports are known: its hooks, and — when it asked for no server with
   * `Deno.serve` — its default export, served as `deno serve` serves it.
   */
  #fromNamespace(namespace: Record<string, unknown>): void {
    const def = namespace.default;
    const members = def !== null && typeof def === "object" ? def as Record<string, unknown> : {};
    Object.assign(this.hooks, findHooks(namespace, members));
    if (this.#isLoaded || this.#isSettling) return this.#settle();
    try {
      const server = defaultServer(namespace, this.#opts.path);
      if (server === null) {
        throw new HandlerError(
          "ERR_HANDLER_NO_DEFAULT",
          `handler ${this.#opts.path} has no default export and calls no Deno.serve: ${SHAPES}`,
        );
      }
      this.#defaultModule = server.module;
      this.#add(server.fetch, {
        transport: "tcp",
        hostname: DEFAULTS.hostname,
        port: DEFAULTS.port,
        isDefault: true,
      }, null);
    } catch (err) {
      return this.failLoad(err);
    }
    this.#settle();
  }

  #settle(): void {
    if (this.#isLoaded) return;
    this.#isLoaded = true;
    const rest: Listener[] = this.#opts.pool?.rest() ?? [];
    if (rest.length > 0 && this.#entries.length > 0) {
      if (this.#entries.length > 1) {
        this.#opts.log.warn(
          `${rest.length} passed listener(s) left over after the app's ${this.#entries.length} ` +
            `servers took theirs: the first server answers on them too`,
        );
      }
      this.#entries[0].binding.listeners.push(...rest);
    }
    this.#loaded.resolve();
  }

  async #stop(entry: AppServerEntry): Promise<void> {
    if (!entry.isStopping) {
      entry.isStopping = true;
      await this.#server?.stopBinding(entry.binding);
      entry.stopped.resolve();
      if (this.#entries.every((e) => e.isStopping)) this.#opts.onAllStopped();
    }
    return entry.stopped.promise;
  }
}

/**
 * Runs `fn` in a later turn of the event loop, as `setTimeout(fn, 0)` would, without Deno's
 * timers: the first timer of a Deno 2.9 process loads its Node timers (~10–40 ms of a start).
 */
function nextTurn(fn: () => void): void {
  const channel = new MessageChannel();
  channel.port1.onmessage = () => {
    channel.port1.close();
    fn();
  };
  channel.port2.postMessage(null);
  channel.port2.close();
}

/** Deno's address shape of a listener. */
function toServeAddr(l: Listener): ServeAddr {
  return l.addr.transport === "unix"
    ? { transport: "unix", path: l.addr.path }
    : { transport: "tcp", hostname: l.addr.hostname, port: l.addr.port };
}

/** In check mode nothing is bound: the address the app asked for stands in. */
function placeholder(listen: ListenRequest): Listener {
  return {
    fd: -1,
    name: "check",
    isOwned: false,
    addr: listen.transport === "unix"
      ? { transport: "unix", path: listen.path }
      : { transport: "tcp", family: "IPv4", hostname: listen.hostname, port: listen.port },
  };
}
