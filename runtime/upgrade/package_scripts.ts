/**
 * @module
 * The maintainer scripts of `apprun package` (docs/design.md, "Shipping"), per Debian Policy
 * §6 and debhelper's systemd snippets (dh_installsystemd), with one difference that is the
 * point of the package: an upgrade never stops the service.
 *
 * - The service runs the artifact from apprun's own directory, `/var/lib/apprun/NAME/NAME`,
 *   not from `/usr/lib/NAME/NAME`, which dpkg replaces before `postinst` runs: so what runs
 *   is never changed under the service, and the previous version is still there to go back
 *   to.
 * - First install (`postinst configure` with nothing installed there): copy the artifact and
 *   manifest there, enable the socket (`deb-systemd-helper`, also without a running
 *   systemd), daemon-reload, start the socket.
 * - Upgrade: `prerm upgrade` does nothing (the service keeps serving; the socket unit is
 *   never stopped); `postinst configure OLD` runs daemon-reload, then the installed apprun's
 *   `upgrade`: the new artifact is copied and checked in the service's sandbox, swapped in,
 *   and the service restarted through systemd's fdstore (`systemctl restart`, every
 *   connection carried over) — debhelper's `--restart-after-upgrade`, with a handoff; a new
 *   version that fails to start is rolled back to the previous artifact, byte for byte,
 *   and the script fails, so dpkg reports it (the package is left half-configured).
 * - `prerm remove` stops socket and service; `postrm remove` removes apprun's copies;
 *   `postrm purge` removes the enablement state and the unpack cache too.
 *
 * `stop-start` renders the usual scripts instead (stop in `prerm`, start in `postinst`, the
 * service running `/usr/lib/NAME/NAME` itself), to measure what they cost. Renders text.
 */
import { PACKAGE_LIB_DIR } from "./layout.ts";

/** How upgrades go. */
export type UpgradeStyle = "handoff" | "stop-start";

/** Options for {@linkcode maintainerScripts}. */
export interface ScriptOptions {
  name: string;
  style: UpgradeStyle;
  /** Socket unit files (started and enabled), then the service's. */
  sockets: string[];
}

/** Where the package puts its artifact and manifest (as dpkg installs them). */
export function packagePaths(name: string): { artifact: string; manifest: string } {
  return { artifact: `/usr/lib/${name}/${name}`, manifest: `/usr/lib/${name}/apprun.json` };
}

/** Where the service runs its artifact from (handoff style). */
export function packagedBin(name: string, style: UpgradeStyle): string {
  return style === "handoff" ? `${PACKAGE_LIB_DIR}/${name}/${name}` : packagePaths(name).artifact;
}

/** `postinst`, `prerm`, `postrm`. */
export function maintainerScripts(o: ScriptOptions): Record<string, string> {
  return { postinst: postinst(o), prerm: prerm(o), postrm: postrm(o) };
}

function header(o: ScriptOptions, what: string): string {
  return `#!/bin/sh
# ${what} of ${o.name}, written by apprun package (runtime/upgrade/package_scripts.ts).
set -e
`;
}

const q = (units: string[]) => units.map((u) => `'${u}'`).join(" ");

/** debhelper's enable snippet: respects an admin who disabled the socket. */
function enable(o: ScriptOptions): string {
  return o.sockets.map((s) =>
    `	deb-systemd-helper unmask '${s}' >/dev/null || true
	if deb-systemd-helper --quiet was-enabled '${s}'; then
		deb-systemd-helper enable '${s}' >/dev/null || true
	else
		deb-systemd-helper update-state '${s}' >/dev/null || true
	fi
`
  ).join("");
}

function postinst(o: ScriptOptions): string {
  const { artifact, manifest } = packagePaths(o.name);
  const dir = `${PACKAGE_LIB_DIR}/${o.name}`;
  if (o.style === "stop-start") {
    return `${
      header(o, "postinst")
    }# The usual upgrade: prerm stopped the service and its socket; start them again.
if [ "$1" = configure ] || [ "$1" = abort-upgrade ]; then
${enable(o)}	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		deb-systemd-invoke start ${q(o.sockets)} >/dev/null || true
	fi
fi
`;
  }
  return `${
    header(o, "postinst")
  }# The service runs ${dir}/${o.name}, a copy of ${artifact}: dpkg replaces
# the package's files before this script runs, never the running service's. An upgrade hands
# every connection to the new version through systemd's fdstore (the service is not stopped)
# and rolls back to the previous version, failing this script, if the new one does not start.
NAME='${o.name}'
DIR='${dir}'
# Where the installed artifact unpacks when this script runs it (not root's home).
export APPRUN_UNPACK_DIR='/var/cache/apprun/${o.name}'
if [ "$1" != configure ]; then exit 0; fi
${enable(o)}if [ -x "$DIR/$NAME" ] && [ -f "$DIR/apprun.json" ]; then
	# Upgrade (or reconfigure): the running apprun checks, swaps, restarts through the fdstore.
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
	fi
	cp '${manifest}' "$DIR/.apprun.json.new"
	mv -f "$DIR/.apprun.json.new" "$DIR/apprun.json"
	if ! "$DIR/$NAME" upgrade '${artifact}' --name "$NAME"; then
		echo "$NAME: the upgrade to this version failed (see above); the previous version still serves" >&2
		exit 1
	fi
else
	mkdir -p "$DIR"
	cp '${artifact}' "$DIR/.$NAME.new"
	mv -f "$DIR/.$NAME.new" "$DIR/$NAME"
	cp '${manifest}' "$DIR/apprun.json"
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		deb-systemd-invoke start ${q(o.sockets)} >/dev/null || true
	fi
fi
`;
}

function prerm(o: ScriptOptions): string {
  const units = [...o.sockets, `${o.name}.service`];
  if (o.style === "stop-start") {
    return `${
      header(o, "prerm")
    }# The usual upgrade: stop before the new files come, start again in postinst.
if [ -d /run/systemd/system ]; then
	deb-systemd-invoke stop ${q(units)} >/dev/null || true
fi
`;
  }
  return `${
    header(o, "prerm")
  }# Only removal stops the service: on upgrade it keeps serving, and the new version's postinst
# hands its connections over through systemd's fdstore.
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	deb-systemd-invoke stop ${q(units)} >/dev/null || true
fi
`;
}

function postrm(o: ScriptOptions): string {
  const dir = `${PACKAGE_LIB_DIR}/${o.name}`;
  const sockets = o.sockets;
  return `${header(o, "postrm")}if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = remove ] || [ "$1" = purge ]; then
	# apprun's copies of the artifact, its versions and manifest: the program, not data.
	rm -rf '${dir}'
	rmdir --ignore-fail-on-non-empty '${PACKAGE_LIB_DIR}' 2>/dev/null || true
fi
if [ "$1" = purge ]; then
${
    sockets.map((s) =>
      `	deb-systemd-helper purge '${s}' >/dev/null || true
	deb-systemd-helper unmask '${s}' >/dev/null || true
`
    ).join("")
  }	# Where the service (CacheDirectory=${o.name}) and this package's scripts unpacked artifacts.
	rm -rf '/var/cache/${o.name}' '/var/cache/private/${o.name}' '/var/cache/apprun/${o.name}'
	rmdir --ignore-fail-on-non-empty /var/cache/apprun 2>/dev/null || true
fi
`;
}
