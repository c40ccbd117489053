/**
 * @module
 * The atomic swap of the installed binary. Invariant: at every instant BIN is a complete
 * file — the old one or the new one, never a half-written one — and once an upgrade has
 * started swapping, `BIN.prev` is a complete copy of what ran before. Only whole, fsynced
 * files are ever renamed onto those names, and rename(2) within one directory replaces the
 * name atomically:
 *
 * 1. copy NEW to a temp file in BIN's directory, fsync it, chmod 0755;
 * 2. link(BIN, temp2) and rename(temp2, BIN.prev): the old file gets its second name;
 * 3. rename(temp, BIN), fsync the directory.
 *
 * Killed anywhere, at most a temp file (`.NAME.new-*`) is left; the next upgrade removes it.
 * Each step is exported (`stageBeside`, `keepAsPrevious`, `placeNew`; `swapIn` is the last two),
 * so a test can run them itself and be killed between them. Owns nothing beyond the files it
 * names; the caller holds the upgrade lock.
 */
import { syncDirectory } from "../sys/mod.ts";
import { UpgradeError } from "./errors.ts";

const dirOf = (p: string) => p.slice(0, p.lastIndexOf("/")) || "/";
const baseOf = (p: string) => p.slice(p.lastIndexOf("/") + 1);

function tempName(bin: string, what: string): string {
  const rand = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
  return `${dirOf(bin)}/.${baseOf(bin)}.${what}-${Deno.pid}-${rand}`;
}

/**
 * What to put in place: bytes (a unit, a manifest), or an existing file to copy — opened
 * once, and `accept` (if given) judges that open file's fstat(2) before a byte is copied, so
 * what was judged is what is copied even if the path changes meanwhile; `onCopied` (if given)
 * is told the bytes copied so far after each piece, and awaited.
 */
export type NewContent =
  | {
    path: string;
    accept?(info: Deno.FileInfo): void;
    onCopied?(bytes: number): void | Promise<void>;
  }
  | { bytes: Uint8Array };

/**
 * Step 1: NEW's content into a fresh temp file beside `bin`, fsynced, mode 0755. Returns the
 * temp path (the caller renames it into place or removes it). Throws {@linkcode UpgradeError},
 * or what `accept` throws.
 */
export async function stageBeside(bin: string, content: NewContent): Promise<string> {
  const source = "path" in content ? await openSource(content) : null;
  const temp = tempName(bin, "new");
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(temp, { write: true, createNew: true, mode: 0o700 });
    if ("bytes" in content) await writeAll(file, content.bytes);
    else await copyInto(file, source!, content.onCopied);
    await file.sync();
    await Deno.chmod(temp, 0o755);
  } catch (err) {
    await Deno.remove(temp).catch(() => {});
    throw new UpgradeError(`cannot write ${temp}: ${(err as Error).message}`, { cause: err });
  } finally {
    file?.close();
    source?.close();
  }
  return temp;
}

async function openSource(
  content: { path: string; accept?(info: Deno.FileInfo): void },
): Promise<Deno.FsFile> {
  let src: Deno.FsFile;
  try {
    src = await Deno.open(content.path, { read: true });
  } catch (err) {
    throw new UpgradeError(`cannot read ${content.path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  try {
    const info = await src.stat();
    if (!info.isFile) throw new UpgradeError(`${content.path} is not a file`);
    content.accept?.(info);
    return src;
  } catch (err) {
    src.close();
    throw err;
  }
}

async function copyInto(
  file: Deno.FsFile,
  src: Deno.FsFile,
  onCopied?: (bytes: number) => void | Promise<void>,
): Promise<void> {
  const buf = new Uint8Array(1 << 20);
  let copied = 0;
  for (;;) {
    const n = await src.read(buf);
    if (n === null) break;
    await writeAll(file, buf.subarray(0, n));
    copied += n;
    await onCopied?.(copied);
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
}

/** Steps 2 and 3: BIN's current file becomes BIN.prev, `temp` becomes BIN. */
export function swapIn(bin: string, temp: string): Promise<void> {
  keepAsPrevious(bin);
  placeNew(bin, temp);
  return Promise.resolve();
}

/** Step 2: link(BIN, temp) + rename(temp, BIN.prev): BIN.prev is replaced whole, never missing. */
export function keepAsPrevious(bin: string): void {
  setPrevious(bin, bin);
}

/** Step 3: rename(temp, BIN), then fsync the directory. */
export function placeNew(bin: string, temp: string): void {
  Deno.renameSync(temp, bin);
  syncDirectory(dirOf(bin));
}

/**
 * rename(2), and then the temp name gone: when both names are links to one file (BIN and
 * BIN.prev after a rollback), rename "does nothing, and returns success" and keeps both.
 */
function renameOver(temp: string, dest: string): void {
  Deno.renameSync(temp, dest);
  try {
    Deno.removeSync(temp);
  } catch {
    // Renamed, as usual.
  }
}

/**
 * The automatic rollback: BIN.prev's file becomes BIN again (BIN.prev keeps it too); the
 * failed file stays as `BIN.failed` for a look.
 */
export function restorePrevious(bin: string): void {
  const prev = `${bin}.prev`;
  const temp = tempName(bin, "restore");
  Deno.linkSync(prev, temp);
  const failed = tempName(bin, "failed");
  Deno.linkSync(bin, failed);
  renameOver(failed, `${bin}.failed`);
  renameOver(temp, bin);
  syncDirectory(dirOf(bin));
}

/**
 * `apprun rollback`: BIN becomes `binSource`'s file and BIN.prev `prevSource`'s. Each name is
 * replaced by rename of a link, so both stay complete throughout.
 */
export function placeVersions(bin: string, binSource: string, prevSource: string | null): void {
  const toBin = tempName(bin, "rollback");
  Deno.linkSync(binSource, toBin);
  setPrevious(bin, prevSource);
  renameOver(toBin, bin);
  syncDirectory(dirOf(bin));
}

/** BIN.prev becomes `source`'s file (by rename of a link), or goes, for null. */
export function setPrevious(bin: string, source: string | null): void {
  if (source === null) {
    try {
      Deno.removeSync(`${bin}.prev`);
    } catch {
      // No previous version.
    }
    return;
  }
  const temp = tempName(bin, "prev");
  Deno.linkSync(source, temp);
  renameOver(temp, `${bin}.prev`);
}

/** Removes temp files a killed upgrade left beside `bin`. Returns their names. */
export function removeLeftovers(bin: string): string[] {
  const prefix = `.${baseOf(bin)}.`;
  const removed: string[] = [];
  for (const e of Deno.readDirSync(dirOf(bin))) {
    if (e.name.startsWith(prefix) && /\.(new|prev|restore|failed|rollback)-\d+-/.test(e.name)) {
      Deno.removeSync(`${dirOf(bin)}/${e.name}`);
      removed.push(e.name);
    }
  }
  return removed;
}

/** Whether `path` exists as a regular file. */
export function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}
