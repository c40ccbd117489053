/**
 * @module
 * The short history of versions an installed service ran (docs/design.md, "Upgrades"), so
 * that `apprun rollback` always reaches the last version that differs from the running one —
 * also after an automatic rollback, where BIN and the version before it are the same file.
 * Beside BIN: `versions/<sha256>`, one hard link per distinct version (byte for byte what
 * ran; content-addressed, so a version stored twice is stored once), and `history.json`,
 * format 1: `{ "format": 1, "versions": [{ sha256, version, at }] }`, oldest first, each
 * version once, at most {@linkcode HISTORY_SIZE}. Written by temp + rename; a file that
 * disappeared is skipped, a history that cannot be read starts afresh. The caller holds the
 * upgrade lock.
 */
import { sha256File } from "./artifact.ts";

/** Distinct versions kept. */
export const HISTORY_SIZE = 5;

/** One version that ran. */
export interface HistoryEntry {
  sha256: string;
  /** What `BIN version` printed. */
  version: string;
  /** When it last became BIN. */
  at: string;
}

const dirOf = (p: string) => p.slice(0, p.lastIndexOf("/")) || "/";

/** The history beside `bin`. */
export class VersionHistory {
  readonly bin: string;
  readonly dir: string;
  readonly #path: string;

  constructor(bin: string) {
    this.bin = bin;
    this.dir = `${dirOf(bin)}/versions`;
    this.#path = `${dirOf(bin)}/history.json`;
  }

  /** The versions, oldest first. */
  entries(): HistoryEntry[] {
    try {
      const doc = JSON.parse(Deno.readTextFileSync(this.#path));
      if (doc?.format !== 1 || !Array.isArray(doc.versions)) return [];
      return doc.versions.filter((e: HistoryEntry) =>
        typeof e?.sha256 === "string" && /^[0-9a-f]{64}$/.test(e.sha256) &&
        typeof e.version === "string"
      );
    } catch {
      return [];
    }
  }

  /** The stored file of a version. */
  fileOf(sha256: string): string {
    return `${this.dir}/${sha256}`;
  }

  /** The content hash of `path` (by inode when it is a stored version, else by reading it). */
  async shaOf(path: string): Promise<string> {
    const ino = Deno.statSync(path).ino;
    for (const e of this.entries()) {
      try {
        if (Deno.statSync(this.fileOf(e.sha256)).ino === ino) return e.sha256;
      } catch {
        // Gone: read the file instead.
      }
    }
    return await sha256File(path);
  }

  /** Keeps `path`'s bytes as version `sha256` (a hard link), if not already kept. */
  store(path: string, sha256: string): void {
    Deno.mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    try {
      Deno.linkSync(path, this.fileOf(sha256));
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    }
  }

  /**
   * Records that version `sha256` (stored) is BIN now: it moves to the end; the oldest beyond
   * {@linkcode HISTORY_SIZE} are dropped with their files.
   */
  remember(sha256: string, version: string): void {
    const kept = this.entries().filter((e) => e.sha256 !== sha256);
    kept.push({ sha256, version, at: new Date().toISOString() });
    kept.splice(0, Math.max(0, kept.length - HISTORY_SIZE));
    this.#write(kept);
    // Dropped versions go, and versions stored for an upgrade that never became BIN.
    const keep = new Set(kept.map((e) => e.sha256));
    for (const e of Deno.readDirSync(this.dir)) {
      if (keep.has(e.name) || !/^[0-9a-f]{64}$/.test(e.name)) continue;
      try {
        Deno.removeSync(`${this.dir}/${e.name}`);
      } catch {
        // Already gone.
      }
    }
  }

  /** The last version before `current` that differs from it and is still stored, or null. */
  previousDistinct(current: string): HistoryEntry | null {
    const entries = this.entries();
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i];
      if (e.sha256 === current) continue;
      try {
        if (Deno.statSync(this.fileOf(e.sha256)).isFile) return e;
      } catch {
        // Its file is gone.
      }
    }
    return null;
  }

  #write(versions: HistoryEntry[]): void {
    const temp = `${this.#path}.${Deno.pid}.tmp`;
    Deno.writeTextFileSync(temp, JSON.stringify({ format: 1, versions }, null, 2) + "\n");
    Deno.renameSync(temp, this.#path);
  }
}
