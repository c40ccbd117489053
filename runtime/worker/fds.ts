/**
 * @module
 * Sorting the fds a process is started with (sd_listen_fds(3)) into listeners, the newest
 * handoff bundle, strangers to close and remove from the store, and invalid ones to refuse.
 * Touches no fd beyond inspecting it.
 */
import type { PassedFd } from "../listen.ts";
import { bundleGeneration, LISTENER_PREFIX } from "../handoff/mod.ts";
import { socketInfo } from "../sys/mod.ts";

/** The fds a process was started with, sorted by what they are. */
export interface SortedFds {
  /** Listening sockets: from a socket unit, a supervisor, or our own stored ones. */
  listeners: PassedFd[];
  /** Which of `listeners` we stored ourselves (so they are stored again at the next handoff). */
  ownListenerNames: Set<string>;
  /** The newest handoff bundle. */
  bundle: (PassedFd & { generation: number }) | null;
  /** Older bundles and stored fds we do not recognise: to close and remove from the store. */
  strangers: PassedFd[];
  /**
   * Passed fds that are neither (a datagram socket, a file) and come before any stored fd, so
   * from the socket unit: the caller refuses them.
   */
  invalid: PassedFd[];
}

/** Sorts passed fds by name and kind. Touches no fd beyond inspecting it. */
export function sortPassedFds(passed: readonly PassedFd[]): SortedFds {
  const out: SortedFds = {
    listeners: [],
    ownListenerNames: new Set(),
    bundle: null,
    strangers: [],
    invalid: [],
  };
  // Stored fds come after the socket unit's (systemd's service_collect_fds(), the supervisor
  // alike): past the first fd known to be from the store, an unknown one is from it too.
  let isInStore = false;
  for (const p of passed) {
    const generation = bundleGeneration(p.name);
    if (generation !== null) {
      isInStore = true;
      if (out.bundle === null) out.bundle = { ...p, generation };
      else if (generation > out.bundle.generation) {
        out.strangers.push(out.bundle);
        out.bundle = { ...p, generation };
      } else out.strangers.push(p);
      continue;
    }
    let info = null;
    try {
      info = socketInfo(p.fd);
    } catch {
      // Not inspectable: treated as a stranger below.
    }
    if (info !== null && info.isListening) {
      out.listeners.push(p);
      if (p.name.startsWith(LISTENER_PREFIX)) {
        out.ownListenerNames.add(p.name);
        isInStore = true;
      }
    } else if (isInStore || p.name === "stored" || p.name.startsWith("apprun-")) {
      // An fd from the store we did not put there (or a connection someone stored): sd_notify(3)
      // says to close and remove what we do not recognise, or close() would send no FIN.
      isInStore = true;
      out.strangers.push(p);
    } else {
      out.invalid.push(p);
    }
  }
  return out;
}
