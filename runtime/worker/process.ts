/**
 * @module
 * The worker's process-level duties: waiting for SIGTERM/SIGINT (later ones ignored while
 * stopping), WATCHDOG=1 pings from a timer (a wedged event loop stops them, so systemd kills
 * it), dying with apprun's supervisor, turning a SIGHUP into a reload request instead of the
 * end of every connection, and keeping the server up when the app leaves a rejection or a
 * throw unhandled.
 */
import { describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Notifier } from "../notify.ts";
import { dieWithParent, parentPid, sendSignal, SIGNALS } from "../sys/mod.ts";

/**
 * Resolves with the first SIGTERM or SIGINT. The listeners stay: a second signal while we stop
 * (a double Ctrl-C, a manager repeating itself) is ignored rather than left to Deno's default
 * action, which would kill us mid-handoff with the connections.
 */
export function waitForStopSignal(): Promise<"SIGTERM" | "SIGINT"> {
  return new Promise((resolve) => {
    Deno.addSignalListener("SIGTERM", () => resolve("SIGTERM"));
    Deno.addSignalListener("SIGINT", () => resolve("SIGINT"));
  });
}

/** WATCHDOG=1 at half the interval systemd asked for (sd_watchdog_enabled(3)). */
export function startWatchdog(notifier: Notifier | null, log: Logger): () => void {
  const usec = Number(Deno.env.get("WATCHDOG_USEC") ?? "0");
  const pid = Deno.env.get("WATCHDOG_PID");
  Deno.env.delete("WATCHDOG_USEC");
  Deno.env.delete("WATCHDOG_PID");
  if (notifier === null || !(usec > 0) || (pid !== undefined && Number(pid) !== Deno.pid)) {
    return () => {};
  }
  const ping = () => {
    try {
      notifier.watchdog();
    } catch (err) {
      log.warn(`watchdog ping failed: ${describeError(err)}`);
    }
  };
  ping();
  const timer = setInterval(ping, Math.max(usec / 2000, 10));
  return () => clearInterval(timer);
}

/**
 * Under apprun's supervisor: stop (SIGTERM) when it dies, as a service dies with its manager.
 * Returns the supervisor's pid, or null when there is none. `isOrphaned`: a reload helper
 * started us through a shell that exits at once, so the supervisor (a subreaper) becomes our
 * parent a moment after we start: wait for that (≤ 2 s) before deciding it is gone.
 */
export function followSupervisor(log: Logger, isOrphaned = false): number | null {
  const pid = Deno.env.get("APPRUN_SUPERVISOR_PID");
  Deno.env.delete("APPRUN_SUPERVISOR_PID");
  if (pid === undefined || !/^\d+$/.test(pid)) return null;
  const deadline = performance.now() + (isOrphaned ? 2000 : 0);
  while (isOrphaned && parentPid() !== Number(pid) && performance.now() < deadline) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
  }
  if (!dieWithParent(SIGNALS.SIGTERM, Number(pid))) {
    log.error(`supervisor ${pid} is gone: exiting`);
    Deno.exit(1);
  }
  return Number(pid);
}

/**
 * SIGHUP to a managed worker (the only pid some people see) would end it and reset every
 * client, Deno's default. Under apprun's supervisor it is passed on: the supervisor reloads
 * (checking the new code first). Under systemd a reload is the manager's restart: one line
 * says which command does it, and the worker serves on.
 */
export function reloadOnHangup(supervisorPid: number | null, log: Logger): void {
  const hint = howToReload(); // now, before the app can change the environment
  Deno.addSignalListener("SIGHUP", () => {
    if (supervisorPid !== null && sendSignal(supervisorPid, SIGNALS.SIGHUP)) {
      log.info(`SIGHUP: asked the supervisor (pid ${supervisorPid}) to reload`);
      return;
    }
    log.warn(`SIGHUP ignored (it would drop every connection): ${hint}`);
  });
}

/** The reload command for the systemd unit this process runs in (from /proc/self/cgroup). */
function howToReload(): string {
  let cgroup = "";
  try {
    cgroup = Deno.readTextFileSync("/proc/self/cgroup");
  } catch {
    // Not Linux's /proc: say it generally.
  }
  const unit = /\/([^/\n]+\.service)\s*$/m.exec(cgroup)?.[1];
  if (unit === undefined) return "restart it through its service manager to reload";
  // systemd.exec(5): MANAGERPID is set for the processes a user manager spawns.
  const isUser = Deno.env.get("MANAGERPID") !== undefined || /\/user@\d+\.service\//.test(cgroup);
  const user = isUser ? " --user" : "";
  const name = unit.replace(/\.service$/, "");
  return `to reload, run \`systemctl${user} restart ${unit}\` or ` +
    `\`apprun reload --name ${name}${user}\``;
}

/**
 * A promise the app forgot to await, or a throw inside one of its timers, is the app's bug,
 * not a reason to drop every connection: once the app is loaded, log it and keep serving.
 * Before that, it is the app failing to load (a throw at import, a rejected top-level await):
 * `app.failLoad` decides, and Deno's own report is suppressed for our one line.
 */
export function keepAliveOnAppErrors(
  log: Logger,
  app: { readonly isLoaded: boolean; failLoad(err: unknown): void },
): void {
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    if (!app.isLoaded) return app.failLoad(e.reason);
    log.error(`unhandled promise rejection in the app: ${describeError(e.reason)}`);
  });
  globalThis.addEventListener("error", (e) => {
    e.preventDefault();
    if (!app.isLoaded) return app.failLoad(e.error ?? e.message);
    log.error(`uncaught exception in the app: ${describeError(e.error ?? e.message)}`);
  });
}
