/**
 * @module
 * The fdstore names apprun uses. Names must be unique per thing stored, since `FDSTOREREMOVE=1`
 * removes every fd of a name (docs/design.md, "systemd facts"): the bundle's carries its
 * generation.
 */
const BUNDLE_PREFIX = "apprun-bundle-";
export const LISTENER_PREFIX = "apprun-listener-";

/** The fdstore name of the bundle written at `generation`. */
export function bundleName(generation: number): string {
  return `${BUNDLE_PREFIX}${generation}`;
}

/** The fdstore name of a listener apprun opened itself (so `--port` servers hand off too). */
export function listenerStoreName(name: string): string {
  return `${LISTENER_PREFIX}${name.replace(/[^A-Za-z0-9_.-]/g, "_")}`;
}

/** The listener name behind its fdstore name. */
export function ownListenerName(storeName: string): string {
  return storeName.startsWith(LISTENER_PREFIX)
    ? storeName.slice(LISTENER_PREFIX.length)
    : storeName;
}

/** The generation in a bundle name, or null when `name` is not a bundle's. */
export function bundleGeneration(name: string): number | null {
  if (!name.startsWith(BUNDLE_PREFIX)) return null;
  const rest = name.slice(BUNDLE_PREFIX.length);
  return /^\d{1,15}$/.test(rest) ? Number(rest) : null;
}
