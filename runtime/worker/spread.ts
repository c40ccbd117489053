/**
 * @module
 * Several event loops, one bundle (docs/design.md, "Several loops"): the harvests of every loop
 * merged into the one a handoff bundles, and what a bundle carried spread over the loops
 * (round-robin: records and idle connections alike, so sessions land on every loop). Pure data:
 * owns no fd — each number moves from one list to another, its owner unchanged.
 */
import { IdleTableBuilder, IdleTableReader } from "../handoff/mod.ts";
import type { CarriedIdle, Harvest } from "./hand_off.ts";
import type { Resumed } from "./resume.ts";

/** One harvest of every loop's, loop 0 first: its app state is the process's (the others' go). */
export function mergeHarvests(harvests: Harvest[]): Harvest {
  const [first, ...rest] = harvests;
  if (rest.length === 0) return first;
  const builder = new IdleTableBuilder();
  for (const h of harvests) appendIdle(builder, h.idle);
  return {
    connections: harvests.flatMap((h) => h.connections),
    idle: { fds: builder.fds, table: builder.build() },
    app: first.app,
    startedAt: Math.min(...harvests.map((h) => h.startedAt)),
    drainMs: Math.max(...harvests.map((h) => h.drainMs)),
    recordMs: Math.max(...harvests.map((h) => h.recordMs)),
  };
}

/**
 * `resumed` as `n` shares, round-robin; every share gets the process's app state (each loop's
 * module instance its own `onAppResume`).
 */
export function spreadResumed(resumed: Resumed, n: number): Resumed[] {
  const shares: Resumed[] = [];
  for (let k = 0; k < n; k++) {
    shares.push({ ...resumed, connections: resumed.connections.filter((_, i) => i % n === k) });
  }
  if (resumed.idle === null) return shares;
  const builders = shares.map(() => new IdleTableBuilder());
  const reader = new IdleTableReader(resumed.idle.table);
  resumed.idle.fds.forEach((fd, i) => builders[i % n].addFrom(reader, i, fd));
  builders.forEach((b, k) => shares[k].idle = { fds: b.fds, table: b.build() });
  return shares;
}

function appendIdle(builder: IdleTableBuilder, idle: CarriedIdle): void {
  const reader = new IdleTableReader(idle.table);
  idle.fds.forEach((fd, i) => builder.addFrom(reader, i, fd));
}
