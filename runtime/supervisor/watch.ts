/**
 * @module
 * `watch`: calls back once the watched paths have been quiet for a debounce period after a
 * change (an editor's save is several events; a build writes many files). A directory is
 * watched with everything under it. A file is watched through its directory, not its inode:
 * an editor that saves by renaming a new file over the old one is seen, and other files in
 * that directory (a log, a database, an editor's swap file) are not. Access-only events are
 * ignored. The set can be replaced while running (`setPaths`). Owns its Deno.FsWatchers and
 * its timer; close() ends them.
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

/** What to ask inotify for, and which of its events count. */
interface Plan {
  /** Watched with everything under them; every event counts. */
  trees: string[];
  /** The directories of watched files, watched without what is under them. */
  dirs: string[];
  /** Watched files: the only events of `dirs` that count. */
  files: Set<string>;
}

/** A running watcher. */
export class FileWatcher {
  readonly #opts: FileWatcherOptions;
  #plan: Plan = { trees: [], dirs: [], files: new Set() };
  #watchers: Deno.FsWatcher[] = [];
  readonly #loops = new Set<Promise<void>>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #changed = new Set<string>();
  #isClosed = false;

  private constructor(opts: FileWatcherOptions) {
    this.#opts = opts;
  }

  /** Starts watching. A path that does not exist is skipped with a warning. */
  static start(opts: FileWatcherOptions): FileWatcher {
    const w = new FileWatcher(opts);
    w.setPaths(opts.paths);
    return w;
  }

  /** The files and directories watched now. */
  get paths(): string[] {
    return [...this.#plan.trees, ...this.#plan.files];
  }

  /** Replaces what is watched; inotify watches change only where the directories did. */
  setPaths(paths: string[]): void {
    if (this.#isClosed) return;
    const plan = planFor(paths, this.#opts.log);
    const isSame = sameList(plan.trees, this.#plan.trees) && sameList(plan.dirs, this.#plan.dirs);
    this.#plan = plan;
    if (isSame && this.#watchers.length > 0) return;
    this.#closeWatchers();
    this.#open(plan.trees, true);
    this.#open(plan.dirs, false);
  }

  #open(paths: string[], recursive: boolean): void {
    if (paths.length === 0) return;
    try {
      const watcher = Deno.watchFs(paths, { recursive });
      this.#watchers.push(watcher);
      const loop: Promise<void> = this.#run(watcher).finally(() => this.#loops.delete(loop));
      this.#loops.add(loop);
    } catch (err) {
      this.#opts.log.warn(`watch: cannot watch ${paths.join(", ")}: ${(err as Error).message}`);
    }
  }

  async #run(watcher: Deno.FsWatcher): Promise<void> {
    try {
      for await (const event of watcher) {
        if (event.kind === "access") continue;
        const counted = event.paths.filter((p) => this.#counts(p));
        if (counted.length === 0) continue;
        for (const p of counted) this.#changed.add(p);
        clearTimeout(this.#timer);
        this.#timer = setTimeout(() => this.#fire(), this.#opts.debounceMs);
      }
    } catch (err) {
      if (!this.#isClosed) {
        this.#opts.log.warn(`watch: stopped watching: ${(err as Error).message}`);
      }
    }
  }

  #counts(path: string): boolean {
    const { trees, files } = this.#plan;
    return files.has(path) || trees.some((t) => path === t || path.startsWith(`${t}/`));
  }

  #fire(): void {
    this.#timer = undefined;
    const paths = [...this.#changed];
    this.#changed.clear();
    this.#opts.onChange(paths);
  }

  #closeWatchers(): void {
    for (const w of this.#watchers) {
      try {
        w.close();
      } catch {
        // Already closed.
      }
    }
    this.#watchers = [];
  }

  /** Stops watching; a pending debounced change is dropped. */
  async close(): Promise<void> {
    this.#isClosed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#closeWatchers();
    await Promise.all([...this.#loops]);
  }
}

/** Sorts `paths` into directories (trees) and files (watched through their directories). */
function planFor(paths: string[], log: Logger): Plan {
  const trees = new Set<string>(), dirs = new Set<string>(), files = new Set<string>();
  for (const given of paths) {
    const raw = given.startsWith("/") ? given : `${Deno.cwd()}/${given}`;
    const path = raw.length > 1 ? raw.replace(/\/+$/, "") : raw;
    let info: Deno.FileInfo | null = null;
    try {
      info = Deno.statSync(path);
    } catch {
      // A file that does not exist yet (an import being written) is watched for its creation.
    }
    if (info?.isDirectory) {
      trees.add(path);
      continue;
    }
    const dir = path.slice(0, path.lastIndexOf("/")) || "/";
    try {
      if (!Deno.statSync(dir).isDirectory) throw new Error("not a directory");
    } catch {
      log.warn(`watch: ${path}: its directory ${dir} does not exist, not watching it`);
      continue;
    }
    dirs.add(dir);
    files.add(path);
  }
  return { trees: [...trees].sort(), dirs: [...dirs].sort(), files };
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
