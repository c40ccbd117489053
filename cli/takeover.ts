/**
 * @module
 * `apprun takeover -- COMMAND…`: the reload helper a warm reload runs as `ExecReload=` (systemd)
 * or as the supervisor's reload command: starts COMMAND (the service's `ExecStart=`) as the
 * next process, which takes every connection over from `$MAINPID` while that one serves on,
 * and makes it the main process. Command glue only: runtime/worker/reload_helper.ts does it.
 */
import { createLogger } from "../runtime/log.ts";
import { runReloadHelper } from "../runtime/worker/mod.ts";
import { UsageError } from "../runtime/args.ts";

export const TAKEOVER_USAGE = `Usage: apprun takeover -- COMMAND [ARGS…]

What a warm reload runs (ExecReload= of the units apprun installs, and apprun's supervisor):
starts COMMAND — the service's ExecStart= — as the next process; it loads the app, then takes
every connection over from the running process ($MAINPID), which serves until then; once it
serves, this makes it the main process (MAINPID=, NotifyAccess=exec) and exits 0. When the new
version does not load, the running process serves on and this exits 1 saying why; when the
running process offers no warm takeover (\`RuntimeDirectory=\` missing, or a version from
before warm reloads), it exits 69: restart instead. Needs $MAINPID and $NOTIFY_SOCKET, as
systemd sets them for ExecReload=.
`;

/** Runs `takeover`. */
export async function takeover(args: string[]): Promise<number> {
  const dashes = args.indexOf("--");
  const command = dashes < 0 ? [] : args.slice(dashes + 1);
  if (dashes !== 0 || command.length === 0 || !command[0].startsWith("/")) {
    throw new UsageError("takeover: give the command after --, with an absolute path");
  }
  const log = createLogger({ tag: "reload" });
  const outcome = await runReloadHelper(command, log);
  if (outcome.code === 0) log.info(outcome.line);
  else log.error(`reload failed, the running process serves on: ${outcome.line}`);
  return outcome.code;
}
