/**
 * @module
 * Loads the user's handler module and normalises its three accepted shapes into one fetch
 * function: `export default { fetch(req, info) }` (as `deno serve` expects, Hono apps
 * included) or `export default (req, info) => Response`. Every way a module can be wrong
 * becomes a `HandlerError` with a one-line message naming the file and the problem.
 */
import { AppRunError, type AppRunErrorCode } from "./errors.ts";
import type { FetchHandler } from "./http/types.ts";

/** A handler module that cannot be used. */
export class HandlerError extends AppRunError {
  override name = "HandlerError";
  constructor(code: AppRunErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

/** A loaded handler module. */
export interface LoadedHandler {
  /** Absolute path of the module. */
  path: string;
  fetch: FetchHandler;
  /** The default export when it is an object (for `onListen` and session hooks), else {}. */
  module: Record<string, unknown>;
  /** The module's named exports (session hooks may be exported by name). */
  namespace: Record<string, unknown>;
}

const SHAPES = "export default { fetch(req) { … } }, a Hono app, or (req) => Response";

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
 * Imports `path` (or, when `path` is "", takes the handler compiled into this binary) and
 * checks its default export. Throws {@linkcode HandlerError}.
 */
export async function loadHandler(path: string): Promise<LoadedHandler> {
  const embedded = embeddedHandler();
  if (path === "" && embedded !== null) return checkShape(embedded.namespace, embedded.path);
  if (path === "") throw new HandlerError("ERR_HANDLER_NOT_FOUND", "no handler file given");
  const abs = resolveHandlerPath(path);
  try {
    const st = await Deno.stat(abs);
    if (!st.isFile) {
      throw new HandlerError("ERR_HANDLER_NOT_FOUND", `handler ${path} is not a file`);
    }
  } catch (err) {
    if (err instanceof HandlerError) throw err;
    throw new HandlerError("ERR_HANDLER_NOT_FOUND", `handler file not found: ${path}`, {
      cause: err,
    });
  }
  let mod: Record<string, unknown>;
  try {
    mod = await import(`file://${abs}`);
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    // Deno puts where a syntax error is on the message's last line ("at file:///…:3:2").
    const where = /at (file:\/\/\S+:\d+:\d+)\s*$/.exec(text)?.[1];
    const first = text.split("\n")[0];
    const msg = where && !first.includes(where) ? `${first} (${where})` : first;
    throw new HandlerError("ERR_HANDLER_IMPORT", `handler ${path} failed to load: ${msg}`, {
      cause: err,
    });
  }
  return checkShape(mod, path, abs);
}

/** Normalises a module's default export into a fetch function. */
function checkShape(mod: Record<string, unknown>, path: string, abs = path): LoadedHandler {
  if (!("default" in mod) || mod.default === undefined) {
    throw new HandlerError(
      "ERR_HANDLER_NO_DEFAULT",
      `handler ${path} has no default export: ${SHAPES}`,
    );
  }
  const def = mod.default as unknown;
  if (typeof def === "function") {
    return { path: abs, fetch: def as FetchHandler, module: {}, namespace: mod };
  }
  if (def !== null && typeof def === "object") {
    const obj = def as Record<string, unknown>;
    if (typeof obj.fetch === "function") {
      const fetch = obj.fetch as (...args: unknown[]) => Response | Promise<Response>;
      return {
        path: abs,
        fetch: (req, info) => fetch.call(obj, req, info),
        module: obj,
        namespace: mod,
      };
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
