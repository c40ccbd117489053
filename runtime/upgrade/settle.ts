/**
 * @module
 * Restarting after a restore without hurting a process mid-start. A failed start leaves the
 * manager about to restart on its own (Restart=on-failure: 100 ms in the supervisor,
 * RestartSec= under systemd). If that automatic start already began, SIGTERM in the middle of
 * it could kill a worker that has drained the handoff bundle: so a start we did not cause is
 * waited out (it ends ready or failed), and only then is the restart asked for. A start of
 * the failed NEW itself (`badPid`: never ready) is restarted at once.
 */
import type { RestartTarget } from "./target.ts";

/** Waits until `target` is not mid-start (unless that start is `badPid`) or stopping. */
export async function settle(
  target: RestartTarget,
  badPid: number | null,
  deadline: number,
): Promise<void> {
  for (;;) {
    const s = await target.status().catch(() => null);
    if (s === null) return;
    const isForeignStart = s.state === "starting" && (s.pid === null || s.pid !== badPid);
    if (!isForeignStart && s.state !== "stopping") return;
    if (performance.now() >= deadline) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}
