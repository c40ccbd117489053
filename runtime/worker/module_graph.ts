/**
 * @module
 * What `apprun serve --watch` watches: the app's module graph — its main module and every
 * local file it imports, outside `node_modules` — as `deno info --json APP` lists it, run as
 * the worker runs (same directory, same environment, no `--config`: the app's own project
 * applies). Asked again after each reload, since imports change. A graph with an error (a
 * module that does not parse, an import of a file not written yet) lists what it can: the
 * files known before stay watched beside it, so the fix is seen. Owns the `deno info`
 * process until it ends (killed after a timeout).
 */
import type { Logger } from "../log.ts";

/** Options for {@linkcode ModuleGraph}. */
export interface ModuleGraphOptions {
  /** The app's main module (absolute). */
  app: string;
  /** The deno executable. */
  deno: string;
  /** The worker's environment. */
  env: Record<string, string>;
  log: Logger;
  timeoutMs?: number;
}

/** One `deno info --json` module, as far as it is read here. */
interface InfoModule {
  specifier?: string;
  local?: string;
  error?: string;
}

/** The files of an app's module graph, remembered between calls. */
export class ModuleGraph {
  readonly #opts: ModuleGraphOptions;
  #files: string[];

  constructor(opts: ModuleGraphOptions) {
    this.#opts = opts;
    this.#files = [opts.app];
  }

  /** The files to watch now (the last known list when `deno info` fails). */
  async files(): Promise<string[]> {
    const { app, deno, env, log } = this.#opts;
    let modules: InfoModule[];
    try {
      modules = await denoInfo(deno, app, env, this.#opts.timeoutMs ?? 15_000);
    } catch (err) {
      log.warn(`watch: cannot read the module graph of ${app}: ${(err as Error).message}`);
      return this.#files;
    }
    const found = new Set([app]);
    for (const m of modules) {
      const path = m.specifier?.startsWith("file://")
        ? decodeURIComponent(new URL(m.specifier).pathname)
        : null;
      if (path !== null && !path.includes("/node_modules/")) found.add(path);
    }
    const isWhole = modules.every((m) => m.error === undefined);
    // A module that does not parse hides its imports: keep watching what was known.
    this.#files = [...(isWhole ? found : new Set([...this.#files, ...found]))].sort();
    log.debug(`watch: ${this.#files.length} file(s) of the module graph`);
    return this.#files;
  }
}

/** `deno info --json APP`'s modules. Throws when it fails or takes longer than `timeoutMs`. */
async function denoInfo(
  deno: string,
  app: string,
  env: Record<string, string>,
  timeoutMs: number,
): Promise<InfoModule[]> {
  const out = await new Deno.Command(deno, {
    args: ["info", "--json", "--quiet", app],
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  if (!out.success) {
    const why = new TextDecoder().decode(out.stderr).trim().split("\n")[0];
    throw new Error(`deno info exited with ${out.code}${why ? `: ${why}` : ""}`);
  }
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules?: InfoModule[] };
  if (!Array.isArray(info.modules)) throw new Error("deno info printed no module list");
  return info.modules;
}
