/**
 * @module
 * `apprun status [--name NAME]`: finds what runs the service (systemd or apprun's supervisor)
 * and prints its state. Exit 0 when it is ready, 3 when it is not (as `systemctl status`).
 */
import { findManifest, findTarget, statusLines } from "../runtime/upgrade/mod.ts";
import { UsageError } from "./args.ts";
import { controlSocketPath } from "../runtime/worker/mod.ts";
import { locateService, parseServiceArgs } from "./upgrade.ts";

export const STATUS_USAGE = `Usage: apprun status [--name NAME] [--user] [--control PATH] [--json]

Prints the service's state: under apprun's supervisor its status reply (state, pid,
generation, STATUS=, stored fds, last handoff); under systemd what systemctl show says
(ActiveState, MainPID, StatusText, NFileDescriptorStore). Exit 0 when ready, 3 when not.
`;

/** Runs `status`. */
export async function status(args: string[]): Promise<number> {
  const a = parseServiceArgs(args, false);
  if (a.positionals.length) {
    throw new UsageError(`status takes no arguments (got ${a.positionals[0]})`);
  }
  let found;
  if (a.name !== undefined && a.control !== undefined) {
    // A supervisor started by hand needs no install.
    const manifest = await findManifest({
      name: a.name,
      scope: a.scope,
      home: Deno.env.get("HOME"),
    })
      .then((m) => m.manifest, () => null);
    const target = await findTarget({
      name: a.name,
      scope: a.scope ?? "system",
      control: a.control,
      defaultControl: controlSocketPath(a.name),
    });
    found = { manifest, target };
  } else {
    found = await locateService(a);
  }
  const s = await found.target.status();
  const name = a.name ?? found.manifest?.name ?? "?";
  if (a.isJson) console.log(JSON.stringify({ name, manager: found.target.kind, ...s }));
  else console.log(statusLines(name, found.target, s, found.manifest).join("\n"));
  return s.state === "ready" ? 0 : 3;
}
