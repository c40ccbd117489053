/**
 * @module
 * NEW as the upgrade takes it: an executable is taken as it is; a handler file is built into
 * an artifact (artifact.ts) in a private temp dir, as `apprun install` does, so the service
 * never depends on the file or the checkout it came from. Run as root, NEW must be root's
 * alone (trust.ts): the executable, or every file of the app the artifact is built from. The
 * caller removes the temp dir (`dispose`).
 */
import { buildArtifact } from "./artifact.ts";
import { UpgradeError } from "./errors.ts";
import { absolutePath, isHandlerFile } from "./layout.ts";
import type { Manifest } from "./manifest.ts";
import type { NewContent } from "./swap.ts";
import { isRootCaller, requireRootOwned, requireRootOwnedTree } from "./trust.ts";

/** NEW, ready to stage beside BIN. */
export interface PreparedNew extends AsyncDisposable {
  /** What to copy beside BIN (its fstat is judged as it is opened). */
  content: NewContent;
  /** "binary /x/y" or "artifact built from /x/app.ts in 1.2 s". */
  description: string;
}

/** Prepares NEW for `manifest`'s service. Throws {@linkcode UpgradeError}. */
export async function prepareNew(path: string, manifest: Manifest): Promise<PreparedNew> {
  const abs = absolutePath(path);
  const isRoot = isRootCaller();
  if (!isHandlerFile(abs)) {
    return {
      content: {
        path: abs,
        accept(info) {
          if (((info.mode ?? 0) & 0o111) === 0) {
            throw new UpgradeError(`NEW ${abs} is not executable`);
          }
          if (isRoot) requireRootOwned(abs, info);
        },
      },
      description: `binary ${abs}`,
      [Symbol.asyncDispose]: () => Promise.resolve(),
    };
  }
  try {
    if (!Deno.statSync(abs).isFile) throw new Error("not a file");
  } catch (err) {
    throw new UpgradeError(`NEW ${path} is not a handler file`, { cause: err });
  }
  const dir = await Deno.makeTempDir({ prefix: "apprun-upgrade-" });
  try {
    const built = await buildArtifact({
      handler: abs,
      output: `${dir}/${manifest.name}`,
      name: manifest.name,
    });
    if (isRoot) requireRootOwnedTree(built.appFiles);
    return {
      content: { path: `${dir}/${manifest.name}` },
      description: `artifact of ${abs} (built in ${(built.ms / 1000).toFixed(1)} s)`,
      [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }).catch(() => {}),
    };
  } catch (err) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  }
}
