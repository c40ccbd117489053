/**
 * @module
 * `apprun status [--name NAME] [--control PATH]`: finds what runs the service (systemd or
 * apprun's supervisor) and prints its state, and for an installed service the versions it
 * ran. `--control` alone asks that supervisor, installed or not. Exit 0 when it is ready, 3
 * when it is not (as `systemctl status`).
 */
import {
  findManifest,
  findTarget,
  type InstalledVersions,
  type Manifest,
  statusLines,
  SupervisorTarget,
  UpgradeError,
  VersionHistory,
} from "../runtime/upgrade/mod.ts";
import { describeError } from "../runtime/errors.ts";
import { UsageError } from "../runtime/args.ts";
import { controlSocketPath } from "../runtime/worker/mod.ts";
import { locateService, parseServiceArgs } from "./upgrade.ts";

export const STATUS_USAGE = `Usage: apprun status [--name NAME] [--user] [--control PATH] [--json]

Prints the service's state: under apprun's supervisor its status reply (state, pid,
generation, STATUS=, stored fds, last handoff); under systemd what systemctl show says
(ActiveState, MainPID, StatusText, NFileDescriptorStore); for an installed service, the
versions it ran (newest first) and the one apprun rollback would go to. With --control PATH
alone it asks that supervisor, whatever it runs. Exit 0 when ready, 3 when not.
`;

/** Runs `status`. */
export async function status(args: string[]): Promise<number> {
  const a = parseServiceArgs(args, false);
  if (a.positionals.length) {
    throw new UsageError(`status takes no arguments (got ${a.positionals[0]})`);
  }
  let manifest: Manifest | null;
  let target;
  if (a.control !== undefined) {
    // A supervisor started by hand needs no install (and no name).
    manifest = a.name === undefined ? null : await findManifest({
      name: a.name,
      scope: a.scope,
      home: Deno.env.get("HOME"),
    }).then((m) => m.manifest, () => null);
    target = await findTarget({
      name: a.name ?? "?",
      scope: a.scope ?? "system",
      control: a.control,
      defaultControl: controlSocketPath(a.name ?? "?"),
    });
  } else {
    ({ manifest, target } = await locateService(a));
  }
  const s = await target.status().catch((err) => {
    if (!(target instanceof SupervisorTarget)) throw err;
    throw new UpgradeError(`no supervisor answers on ${target.path}: ${describeError(err)}`);
  });
  const name = a.name ?? manifest?.name ?? controlName(a.control);
  const versions = manifest === null ? null : await installedVersions(manifest.bin);
  if (a.isJson) {
    console.log(JSON.stringify({ name, manager: target.kind, ...s, versions }));
  } else {
    console.log(statusLines(name, target, s, manifest, versions).join("\n"));
  }
  return s.state === "ready" ? 0 : 3;
}

/** The history beside BIN, or null when BIN cannot be read. */
async function installedVersions(bin: string): Promise<InstalledVersions | null> {
  const history = new VersionHistory(bin);
  try {
    const current = await history.shaOf(bin);
    return {
      entries: history.entries(),
      current,
      rollbackTo: history.previousDistinct(current)?.sha256 ?? null,
    };
  } catch {
    return null;
  }
}

/** `hello` for `/run/user/0/apprun/hello.sock`. */
function controlName(control: string | undefined): string {
  const base = control?.slice(control.lastIndexOf("/") + 1) ?? "?";
  return base.replace(/\.sock$/, "") || "?";
}
