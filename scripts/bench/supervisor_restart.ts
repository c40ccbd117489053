/**
 * How long a restart takes under the embedded supervisor with trivial workers — the python
 * protocol worker of the supervisor tests and a Deno one: SIGTERM to the old worker → READY=1
 * of the new one, as the supervisor reports it. The floor is the worker's own start time.
 * Prints figures; it never passes or fails (it was a test whose only check, a median under
 * 2 s, could not fail on any working supervisor).
 *
 *   deno run -A scripts/bench/supervisor_restart.ts [--restarts 10]
 */
import { parseArgs } from "node:util";
import { openListeners } from "../../runtime/listen.ts";
import { Supervisor, type WorkerCommand } from "../../runtime/supervisor/mod.ts";
import { closeFd } from "../../runtime/sys/mod.ts";
import { DENO_WORKER, MemoryLog, pyWorker } from "../../tests/supervisor/_harness.ts";
import { DENO, fmt, median } from "./_lib.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { restarts: { type: "string", default: "10" } },
});
const restarts = Number(values.restarts);

/** SIGTERM → READY=1 of `n` restarts of `worker`, ms. */
async function measure(worker: WorkerCommand, n: number): Promise<number[]> {
  const [listener] = openListeners({ port: 0, host: "127.0.0.1" });
  const sup = new Supervisor({
    worker,
    listeners: [listener],
    log: new MemoryLog(),
    startLimit: { burst: 0, intervalMs: 0 },
  });
  const times: number[] = [];
  try {
    await sup.start();
    for (let i = 0; i < n; i++) times.push((await sup.restart()).handoffMs!);
  } finally {
    await sup.stop();
    closeFd(listener.fd);
  }
  return times;
}

const workers: [string, WorkerCommand][] = [
  ["python worker", pyWorker()],
  ["deno worker", { path: DENO, args: ["run", "-A", DENO_WORKER], env: {} }],
];
for (const [label, worker] of workers) {
  const times = await measure(worker, restarts);
  console.log(
    `${label}: ${restarts} restarts, SIGTERM → READY=1 median ${fmt(median(times))} ms ` +
      `(min ${fmt(Math.min(...times))}, max ${fmt(Math.max(...times))})`,
  );
}
