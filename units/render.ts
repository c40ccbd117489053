/**
 * @module
 * Renders the whole set `apprun install` writes: one `.socket` unit per fd name (systemd
 * names every fd of a socket unit alike) and the `.service` they activate, wired together
 * with `Service=`/`Sockets=`. File names only; writing them is the caller's (see `paths.ts`).
 */
import { fail } from "./_validate.ts";
import {
  checkListener,
  DEFAULT_FD_NAME,
  findOverlap,
  isIPv6Wildcard,
  type Listener,
  listenStreamValue,
} from "./listeners.ts";
import { renderServiceUnit, type ServiceUnitOptions } from "./service.ts";
import { renderSocketUnit, type SocketUnitOptions } from "./socket.ts";

/** Options for {@linkcode renderUnits}: the service's, plus the socket-activated listeners. */
export interface UnitSetOptions extends Omit<ServiceUnitOptions, "sockets"> {
  /** Listeners systemd binds; grouped by `name` into socket units. May be empty. */
  listeners: readonly Listener[];
  backlog?: SocketUnitOptions["backlog"];
  socketMode?: SocketUnitOptions["socketMode"];
  socketUser?: SocketUnitOptions["socketUser"];
  socketGroup?: SocketUnitOptions["socketGroup"];
}

/** One unit file: its name (`hello.socket`) and text. */
export interface RenderedUnit {
  file: string;
  text: string;
}

/**
 * Renders `${name}.socket` for the first fd name, `${name}-${fdName}.socket` for each
 * further one, then `${name}.service`. Throws {@linkcode UnitOptionError} on a bad option.
 */
export function renderUnits(opts: UnitSetOptions): RenderedUnit[] {
  if (!Array.isArray(opts.listeners)) fail("listeners", "must be an array (possibly empty)");
  const listeners = opts.listeners.map((l, i) => checkListener(l, `listeners[${i}]`));
  const overlap = findOverlap(listeners);
  if (overlap && !overlap.isDualStack) {
    fail(
      `listeners[${overlap.b}]`,
      `${
        listenStreamValue(listeners[overlap.b])
      } binds the same address as listeners[${overlap.a}]`,
    );
  }

  const groups = new Map<string, Listener[]>();
  for (const l of listeners) {
    const fdName = l.name ?? DEFAULT_FD_NAME;
    groups.set(fdName, [...(groups.get(fdName) ?? []), l]);
  }
  const { listeners: _, backlog, socketMode, socketUser, socketGroup, ...service } = opts;
  const sockets = [...groups].map(([fdName, group], i) => {
    const file = i === 0 ? `${opts.name}.socket` : `${opts.name}-${fdName}.socket`;
    const text = renderSocketUnit({
      name: opts.name,
      scope: opts.scope,
      listeners: group,
      fdName,
      backlog,
      ...(group.some((l) => l.kind === "unix") ? { socketMode, socketUser, socketGroup } : {}),
      // A dual-stack [::] in this unit and an IPv4 listener on its port in another one.
      isIPv6Only: overlap !== null && group.some(isIPv6Wildcard),
    });
    return { file, text };
  });
  const serviceText = renderServiceUnit({ ...service, sockets: sockets.map((s) => s.file) });
  return [...sockets, { file: `${opts.name}.service`, text: serviceText }];
}
