/**
 * @module
 * The app's main module as a handler: its default export in the shapes `deno serve` takes —
 * `export default { fetch(req, info) }` (Hono apps included) or `export default (req, info) =>
 * Response` — normalised into one fetch function, and every way a module can be wrong (it does
 * not exist, it throws while loading, it serves nothing) as a `HandlerError` with one line
 * naming the file and the problem. Also the handler a compiled binary carries. Loads nothing
 * itself: the worker runs the module as Deno's main module (worker/app.ts).
 */
import { AppRunError, type AppRunErrorCode } from "./errors.ts";
import type { FetchHandler } from "./http/mod.ts";

/** A handler module that cannot be used. */
export class HandlerError extends AppRunError {
  override name = "HandlerError";
  constructor(code: AppRunErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

/** A module's default export, normalised. */
export interface DefaultServer {
  fetch: FetchHandler;
  /** The default export when it is an object (for `onListen` and session hooks), else {}. */
  module: Record<string, unknown>;
}

/** What a module that serves nothing is told. */
export const SHAPES =
  "call Deno.serve(…), or export default { fetch(req) { … } }, a Hono app, or (req) => Response";

/** Resolves `path` against the working directory. */
export function resolveHandlerPath(path: string, cwd = Deno.cwd()): string {
  if (path.startsWith("file://")) return new URL(path).pathname;
  return path.startsWith("/") ? path : `${cwd.replace(/\/$/, "")}/${path}`;
}

const EMBEDDED = Symbol.for("apprun.embeddedHandler");

/** Registers the handler compiled into this binary (`apprun compile` writes the call). */
export function embedHandler(namespace: Record<string, unknown>, path: string): void {
  (globalThis as Record<symbol, unknown>)[EMBEDDED] = { namespace, path };
}

/** The handler compiled into this binary, or null. */
export function embeddedHandler(): { namespace: Record<string, unknown>; path: string } | null {
  return ((globalThis as Record<symbol, unknown>)[EMBEDDED] ?? null) as {
    namespace: Record<string, unknown>;
    path: string;
  } | null;
}

/**
 * The server a module's default export describes, or null when it has no default export.
 * Throws {@linkcode HandlerError} for a default export of another shape.
 */
export function defaultServer(mod: Record<string, unknown>, path: string): DefaultServer | null {
  if (!("default" in mod) || mod.default === undefined) return null;
  const def = mod.default as unknown;
  if (typeof def === "function") return { fetch: def as FetchHandler, module: {} };
  if (def !== null && typeof def === "object") {
    const obj = def as Record<string, unknown>;
    if (typeof obj.fetch === "function") {
      const fetch = obj.fetch as (...args: unknown[]) => Response | Promise<Response>;
      return { fetch: (req, info) => fetch.call(obj, req, info), module: obj };
    }
    throw new HandlerError(
      "ERR_HANDLER_SHAPE",
      `default export of ${path} is an object without a fetch() method: ${SHAPES}`,
    );
  }
  throw new HandlerError(
    "ERR_HANDLER_SHAPE",
    `default export of ${path} is ${def === null ? "null" : `a ${typeof def}`}: ${SHAPES}`,
  );
}

/** apprun's runtime files: frames there are not where the app went wrong. */
const APPRUN_RUNTIME = new URL(".", import.meta.url).href;

/**
 * One line for an error thrown while the module loads: the message's first line and where it
 * was thrown in the app (`file:///…:3:2`), not in apprun or Deno.
 */
export function loadFailure(path: string, err: unknown): HandlerError {
  const text = err instanceof Error ? err.message : String(err);
  const stack = err instanceof Error ? err.stack ?? "" : "";
  const first = text.split("\n")[0];
  const where = /at (file:\/\/\S+:\d+:\d+)\s*$/.exec(text)?.[1] ??
    [...stack.matchAll(/(file:\/\/[^\s)]+:\d+:\d+)/g)].map((m) => m[1])
      .find((w) => !w.startsWith(APPRUN_RUNTIME) && !w.startsWith("ext:"));
  const msg = where && !first.includes(where) ? `${first} (${where})` : first;
  const name = err instanceof Error && err.name !== "Error" ? `${err.name}: ` : "";
  return new HandlerError("ERR_HANDLER_IMPORT", `handler ${path} failed to load: ${name}${msg}`, {
    cause: err,
  });
}
