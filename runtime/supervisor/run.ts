/**
 * @module
 * `runSupervisor()`: a {@linkcode Supervisor} wired to the process's signals, as a service
 * manager is — SIGTERM and SIGINT stop it (the worker gets SIGTERM, the store is flushed),
 * SIGHUP reloads (`reloadCommand`, as `systemctl reload`), or restarts the worker without one.
 * Owns its signal listeners and removes them before returning.
 */
import { describeError } from "../errors.ts";
import type { RestartReply } from "./control.ts";
import type { SupervisorOptions } from "./options.ts";
import { RestartRefused } from "./restart_gate.ts";
import { Supervisor } from "./supervisor.ts";

/**
 * Runs the supervisor until it finishes and returns its exit status: 0 after a stop (signal,
 * control request) or when the worker stopped cleanly on its own; the worker's status (or
 * 128+signal, or 1) when it failed and is not restarted; 1 when the start limit was hit or
 * what the supervisor needs (notify socket, control socket) could not be opened. `onStarted`
 * is called once the first worker is ready.
 */
export async function runSupervisor(
  opts: SupervisorOptions,
  onStarted?: (reply: RestartReply) => void,
): Promise<number> {
  const supervisor = new Supervisor(opts);
  const { log } = opts;
  const stopOn = (name: string) => () => {
    log.info(`${name}: stopping`);
    supervisor.stop();
  };
  const onHangup = () => {
    const done = supervisor.canReload
      ? supervisor.reload(undefined, "SIGHUP")
      : supervisor.restart(undefined, "SIGHUP");
    done.catch((err) => {
      // A refusal was logged with its reason.
      if (!(err instanceof RestartRefused)) {
        log.warn(
          `SIGHUP: the ${supervisor.canReload ? "reload" : "restart"} failed: ${
            describeError(err)
          }`,
        );
      }
    });
  };
  const listeners: [Deno.Signal, () => void][] = [
    ["SIGTERM", stopOn("SIGTERM")],
    ["SIGINT", stopOn("SIGINT")],
    ["SIGHUP", onHangup],
  ];
  for (const [signal, fn] of listeners) Deno.addSignalListener(signal, fn);
  try {
    try {
      const reply = await supervisor.start();
      onStarted?.(reply);
    } catch (err) {
      // A stop during the first start is not a failure; a failure was logged where it happened.
      const line = `the worker did not start: ${describeError(err)}`;
      if (supervisor.state === "failed") log.debug(line);
      else log.info(line);
    }
    return await supervisor.done;
  } finally {
    for (const [signal, fn] of listeners) Deno.removeSignalListener(signal, fn);
  }
}
