/**
 * @module
 * NEW as the upgrade takes it: an executable is used as it is; a handler file gets a
 * launcher generated for it (as `apprun install` would write), placed in a private temp dir
 * so that it can be checked before anything is touched. The caller removes that dir
 * (`dispose`).
 */
import { UpgradeError } from "./errors.ts";
import { checkoutApprun, isHandlerFile, renderLauncher } from "./launcher.ts";
import type { Manifest } from "./manifest.ts";
import type { NewContent } from "./swap.ts";

/** NEW, ready to check and to stage. */
export interface PreparedNew extends AsyncDisposable {
  /** What to run for the check. */
  path: string;
  /** What to copy beside BIN. */
  content: NewContent;
  /** "binary /x/y" or "launcher for /x/app.ts". */
  description: string;
}

/** Resolves `path` against the working directory. */
export function absolute(path: string): string {
  return path.startsWith("/") ? path : `${Deno.cwd().replace(/\/$/, "")}/${path}`;
}

/** Prepares NEW for `manifest`'s service. Throws {@linkcode UpgradeError}. */
export async function prepareNew(path: string, manifest: Manifest): Promise<PreparedNew> {
  const abs = absolute(path);
  if (!isHandlerFile(abs)) {
    return {
      path: abs,
      content: { path: abs },
      description: `binary ${abs}`,
      [Symbol.asyncDispose]: () => Promise.resolve(),
    };
  }
  try {
    if (!(await Deno.stat(abs)).isFile) throw new Error("not a file");
  } catch (err) {
    throw new UpgradeError(`NEW ${path} is not a handler file`, { cause: err });
  }
  const text = renderLauncher({
    name: manifest.name,
    handler: abs,
    apprun: checkoutApprun(),
    self: manifest.bin,
  });
  const dir = await Deno.makeTempDir({ prefix: "apprun-upgrade-" });
  const launcher = `${dir}/${manifest.name}`;
  await Deno.writeTextFile(launcher, text, { mode: 0o755 });
  return {
    path: launcher,
    content: { bytes: new TextEncoder().encode(text) },
    description: `launcher for ${abs}`,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }).catch(() => {}),
  };
}
