/**
 * @module
 * `Deno.serve` on apprun's engine: reads the arguments in every form Deno documents —
 * `(handler)`, `(options, handler)`, `({ ...options, handler })` — into a {@linkcode ServeCall}
 * for the worker (its {@linkcode ServeHost}), and returns an object that behaves as Deno's
 * `HttpServer`: `addr`, `finished`, `shutdown()`, `ref()`/`unref()`, `[Symbol.asyncDispose]`.
 * What apprun cannot honour is a `TypeError` naming it (TLS, vsock), never a silent
 * difference. Owns no socket: the host binds and serves.
 */
import type { FetchHandler, ServeHandlerInfo } from "../http/mod.ts";

/** Where a `Deno.serve` call asks to listen. */
export type ListenRequest =
  | { transport: "tcp"; hostname: string; port: number; isDefault: boolean }
  | { transport: "unix"; path: string };

/** Deno's address shapes (`Deno.NetAddr`, `Deno.UnixAddr`). */
export type ServeAddr =
  | { transport: "tcp"; hostname: string; port: number }
  | { transport: "unix"; path: string };

/** One `Deno.serve` call, read. */
export interface ServeCall {
  handler: FetchHandler;
  listen: ListenRequest;
  onListen?: (addr: ServeAddr) => void;
  onError?: (error: unknown) => Response | Promise<Response>;
  signal?: AbortSignal;
}

/** What the host gives back for a call: the address it serves on, and the server's end. */
export interface BoundServe {
  addr: ServeAddr;
  /** Stops this server gracefully (as `HttpServer.shutdown()`). */
  shutdown(): Promise<void>;
  /** Settles when this server has stopped. */
  finished: Promise<void>;
}

/** The worker side of `Deno.serve`. */
export interface ServeHost {
  /** Binds the call's listener now (so `addr` is real at once) and serves it. */
  serve(call: ServeCall): BoundServe;
}

type AnyHandler = (request: Request, info: ServeHandlerInfo) => Response | Promise<Response>;
type Options = Record<string, unknown>;

const DEFAULT_PORT = 8000;
const DEFAULT_HOSTNAME = "0.0.0.0";

/** Reads `Deno.serve`'s arguments. Throws TypeError as Deno does, or for what apprun lacks. */
export function readServeArgs(a: unknown, b: unknown): ServeCall {
  let options: Options;
  let handler: unknown;
  if (typeof a === "function") {
    options = {};
    handler = a;
  } else if (a !== null && typeof a === "object") {
    options = a as Options;
    handler = typeof b === "function" ? b : options.handler;
  } else {
    throw new TypeError("Deno.serve: expected a handler function or an options object");
  }
  if (typeof handler !== "function") {
    throw new TypeError("Deno.serve: a handler function is required (options.handler)");
  }
  if (options.cert !== undefined || options.key !== undefined) {
    throw new TypeError(
      "Deno.serve: TLS (cert/key) is not supported by apprun, whose connections move between " +
        "processes: terminate TLS in front (nginx, Caddy, a load balancer) and serve plain HTTP",
    );
  }
  const transport = options.transport ?? (options.path !== undefined ? "unix" : "tcp");
  let listen: ListenRequest;
  if (transport === "unix") {
    if (typeof options.path !== "string" || options.path === "") {
      throw new TypeError("Deno.serve: a unix transport needs options.path");
    }
    listen = { transport: "unix", path: options.path };
  } else if (transport === "tcp") {
    const port = options.port ?? DEFAULT_PORT;
    if (typeof port !== "number" || !Number.isInteger(port) || port < 0 || port > 65535) {
      throw new TypeError(`Deno.serve: port must be an integer 0–65535, not ${String(port)}`);
    }
    const hostname = options.hostname ?? DEFAULT_HOSTNAME;
    if (typeof hostname !== "string") throw new TypeError("Deno.serve: hostname must be a string");
    listen = {
      transport: "tcp",
      hostname,
      port,
      isDefault: options.port === undefined && options.hostname === undefined,
    };
  } else {
    throw new TypeError(
      `Deno.serve: the ${String(transport)} transport is not supported by apprun`,
    );
  }
  const call: ServeCall = { handler: withOnError(handler as AnyHandler, options.onError), listen };
  if (typeof options.onListen === "function") {
    call.onListen = options.onListen as ServeCall["onListen"];
  }
  if (typeof options.onError === "function") call.onError = options.onError as ServeCall["onError"];
  if (options.signal instanceof AbortSignal) call.signal = options.signal;
  return call;
}

/** `onError` answers a throwing handler, as in Deno.serve; sync handlers stay sync. */
function withOnError(handler: AnyHandler, onError: unknown): FetchHandler {
  if (typeof onError !== "function") return handler;
  const answer = onError as (error: unknown) => Response | Promise<Response>;
  return (request, info) => {
    let result;
    try {
      result = handler(request, info);
    } catch (err) {
      return answer(err);
    }
    return result instanceof Promise ? result.catch(answer) : result;
  };
}

/** Deno's own line when a server listens and the app gave no `onListen`. */
export function defaultOnListen(addr: ServeAddr): void {
  if (addr.transport === "unix") {
    console.error(`Listening on ${addr.path}`);
    return;
  }
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  const local = addr.hostname === "0.0.0.0" || addr.hostname === "::"
    ? ` (http://localhost:${addr.port}/)`
    : "";
  console.error(`Listening on http://${host}:${addr.port}/${local}`);
}

/** A `Deno.HttpServer` over what the host bound. */
export class AppServer {
  readonly addr: ServeAddr;
  readonly finished: Promise<void>;
  readonly #bound: BoundServe;

  constructor(bound: BoundServe) {
    this.#bound = bound;
    this.addr = bound.addr;
    this.finished = bound.finished;
  }

  /** Stops accepting, lets requests in flight finish, then settles `finished`. */
  shutdown(): Promise<void> {
    return this.#bound.shutdown();
  }

  /**
   * Deno lets an unref'd server stop keeping the process alive. An apprun worker lives until
   * its manager stops it (a handoff needs it), so these change nothing.
   */
  ref(): void {}
  unref(): void {}

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }
}

/**
 * `Deno.serve` served by `host`. `isQuiet`: no "Listening on" line when the app gives no
 * `onListen` (a `--parallel` loop after the first: the main loop said it).
 */
export function serveOn(host: ServeHost, isQuiet = false): (a: unknown, b?: unknown) => AppServer {
  return function serve(a: unknown, b?: unknown): AppServer {
    const call = readServeArgs(a, b);
    const server = new AppServer(host.serve(call));
    if (call.signal !== undefined) {
      if (call.signal.aborted) void server.shutdown();
      else call.signal.addEventListener("abort", () => void server.shutdown(), { once: true });
    }
    if (call.onListen !== undefined) call.onListen(server.addr);
    else if (!isQuiet) defaultOnListen(server.addr);
    return server;
  };
}

/** Replaces `Deno.serve` (an accessor on `Deno`, configurable) with apprun's, served by `host`. */
export function installDenoServe(host: ServeHost, isQuiet = false): void {
  Object.defineProperty(Deno, "serve", {
    value: serveOn(host, isQuiet),
    writable: true,
    configurable: true,
  });
}
