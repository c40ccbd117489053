/**
 * @module
 * `--watch`: calls back once the given files or directories have been quiet for a debounce
 * period after a change (an editor's save is several events; a build writes many files).
 * Access-only events are ignored. Owns its Deno.FsWatcher and its timer; close() ends both.
 */
import type { Logger } from "../log.ts";

/** Options for {@linkcode FileWatcher.start}. */
export interface FileWatcherOptions {
  paths: string[];
  debounceMs: number;
  /** Called with the changed paths (deduplicated) after the quiet period. */
  onChange(paths: string[]): void;
  log: Logger;
}

/** A running watcher. */
export class FileWatcher {
  readonly #watcher: Deno.FsWatcher;
  readonly #opts: FileWatcherOptions;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #changed = new Set<string>();
  #loop: Promise<void> = Promise.resolve();

  private constructor(watcher: Deno.FsWatcher, opts: FileWatcherOptions) {
    this.#watcher = watcher;
    this.#opts = opts;
  }

  /** Starts watching (recursively for directories). Throws when a path does not exist. */
  static start(opts: FileWatcherOptions): FileWatcher {
    const w = new FileWatcher(Deno.watchFs(opts.paths, { recursive: true }), opts);
    w.#loop = w.#run();
    return w;
  }

  async #run(): Promise<void> {
    try {
      for await (const event of this.#watcher) {
        if (event.kind === "access") continue;
        for (const p of event.paths) this.#changed.add(p);
        clearTimeout(this.#timer);
        this.#timer = setTimeout(() => this.#fire(), this.#opts.debounceMs);
      }
    } catch (err) {
      this.#opts.log.warn(`watch: stopped watching: ${(err as Error).message}`);
    }
  }

  #fire(): void {
    this.#timer = undefined;
    const paths = [...this.#changed];
    this.#changed.clear();
    this.#opts.onChange(paths);
  }

  /** Stops watching; a pending debounced change is dropped. */
  async close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    try {
      this.#watcher.close();
    } catch {
      // Already closed.
    }
    await this.#loop;
  }
}
