/**
 * @module
 * The worker's life as one state machine, and the table of allowed moves. The invariant it
 * keeps: the supervisor spawns a worker only from a state without one (systemd cannot run two
 * instances of a unit either). During a reload the control process may start the next one,
 * which becomes the main process by MAINPID= (the one it replaces only gets reaped).
 *
 * | state          | a process? | systemd's nearest state        | left by                     |
 * |----------------|------------|--------------------------------|-----------------------------|
 * | `idle`         | no         | dead (never started)           | start, stop                 |
 * | `starting`     | yes        | start (waiting for READY=1)    | READY=1, exit, timeout, stop|
 * | `ready`        | yes        | running                        | exit, stop, STOPPING=1,     |
 * |                |            |                                | watchdog, reload            |
 * | `reloading`    | yes, and a control process | reload         | the control process's exit  |
 * | `stopping`     | yes        | stop-sigterm / stop-watchdog   | exit, stop timeout (SIGKILL)|
 * | `killing`      | yes        | stop-sigkill                   | exit, second timeout        |
 * | `auto-restart` | no         | auto-restart (RestartSec=)     | delay over, restart, stop   |
 * | `stopped`      | no         | dead (inactive), terminal      | —                           |
 * | `failed`       | no         | failed, terminal               | —                           |
 */
import type { MoveTable } from "../state_machine.ts";

/** Where the worker is in its life. */
export type WorkerState =
  | "idle"
  | "starting"
  | "ready"
  | "reloading"
  | "stopping"
  | "killing"
  | "auto-restart"
  | "stopped"
  | "failed";

/**
 * The allowed moves, checked by runtime/state_machine.ts's `checkedMove`. A spawn (→ `starting`)
 * only ever leaves a state without a process.
 */
export const WORKER_MOVES: MoveTable<WorkerState> = {
  "idle": ["starting", "stopped", "failed"],
  "starting": ["ready", "stopping", "auto-restart", "failed"],
  "ready": ["stopping", "reloading", "auto-restart", "stopped", "failed"],
  "reloading": ["ready", "starting", "auto-restart", "stopped", "failed"],
  "stopping": ["killing", "starting", "auto-restart", "stopped", "failed"],
  "killing": ["starting", "auto-restart", "stopped", "failed"],
  "auto-restart": ["starting", "stopped", "failed"],
  "stopped": [],
  "failed": [],
};

/** Whether a process may exist in `state`. */
export function hasProcess(state: WorkerState): boolean {
  return state === "starting" || state === "ready" || state === "reloading" ||
    state === "stopping" || state === "killing";
}

/** Whether `state` is final: the supervisor has finished. */
export function isTerminal(state: WorkerState): boolean {
  return state === "stopped" || state === "failed";
}
