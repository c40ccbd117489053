/**
 * How long a restart takes with trivial workers (python, and a Deno one): SIGTERM to the old
 * worker → READY=1 of the new one, as the supervisor reports it. Prints the numbers; the
 * assertion only catches a gross regression (the floor is the worker's own start time).
 */
import assert from "node:assert/strict";
import { DENO, DENO_WORKER, pyWorker, withSupervisor } from "./_harness.ts";

async function measure(worker: Parameters<typeof withSupervisor>[0]["worker"], n: number) {
  const times: number[] = [];
  await withSupervisor({ worker, startLimit: { burst: 0, intervalMs: 0 } }, async ({ sup }) => {
    await sup.start();
    for (let i = 0; i < n; i++) times.push((await sup.restart()).handoffMs!);
  });
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(n / 2)], min: times[0], max: times[n - 1] };
}

Deno.test("restart time with trivial workers (SIGTERM → READY=1)", async () => {
  const py = await measure(pyWorker(), 10);
  const deno = await measure({ path: DENO, args: ["run", "-A", DENO_WORKER], env: {} }, 5);
  console.log(`  python worker: median ${py.median} ms (min ${py.min}, max ${py.max})`);
  console.log(`  deno worker:   median ${deno.median} ms (min ${deno.min}, max ${deno.max})`);
  assert.ok(py.median < 2000 && deno.median < 5000);
});
