/**
 * @module
 * `apprun package HANDLER --name NAME --version V --port P`: argument parsing and printing
 * around runtime/upgrade/package.ts, which builds the .deb.
 */
import { UnitOptionError } from "../units/mod.ts";
import { absolutePath, buildPackage, formatMs } from "../runtime/upgrade/mod.ts";
import { parseCommandLine, UsageError } from "../runtime/args.ts";
import { cliOption, parseServiceSettings, SERVICE_OPTIONS } from "./install.ts";

export const PACKAGE_USAGE =
  `Usage: apprun package HANDLER|ARTIFACT --name NAME --version V (--port N | --listen SPEC…) [options]

Builds a Debian package (with dpkg-deb): the artifact of HANDLER (as apprun compile
--format apprun makes it; or ARTIFACT as it is) in /usr/lib/NAME/, NAME.socket and
NAME.service in /usr/lib/systemd/system, and maintainer scripts written for handoff:

  first install  postinst copies the artifact to /var/lib/apprun/NAME (the service runs it
                 from there), enables and starts the socket;
  upgrade        prerm leaves the service running (the socket unit is never stopped);
                 postinst runs daemon-reload, then the installed apprun's upgrade: the new
                 artifact is checked in the service's sandbox, swapped in, and the service
                 restarted through systemd's fdstore — no connection dropped. A new version
                 that fails to start is rolled back to the previous artifact, byte for byte,
                 and postinst fails, so dpkg reports it;
  remove         prerm stops socket and service; postrm removes /var/lib/apprun/NAME;
  purge          postrm also removes the enablement state and /var/cache/NAME.

Options:
  --name NAME            the package's and the service's name (Debian: a-z 0-9 + - .)
  --version V            the package's version, also shown by NAME version
  -o, --output PATH      the .deb to write, or a directory (default: ./NAME_V_ARCH.deb)
  --maintainer WHO       "Full Name <email>" (default: $DEBFULLNAME <$DEBEMAIL>)
  --description TEXT     the package's one-line summary
  --include PATH         a file or directory the app reads at run time (repeatable)
  --upgrade-style S      handoff (the default) or stop-start: the usual scripts that stop
                         the service before an upgrade and start it after (to compare)
  --port N, --listen SPEC, --drain-timeout T, --env K=V, --env-file FILE, --watchdog T,
  --max-connections N, --parallel N, --health URL: as apprun install
`;

/** Runs `package`. */
export async function packageCommand(args: string[]): Promise<number> {
  const parsed = parseCommandLine({
    args,
    allowPositionals: true,
    options: {
      ...SERVICE_OPTIONS,
      name: { type: "string" },
      version: { type: "string" },
      output: { type: "string", short: "o" },
      maintainer: { type: "string" },
      description: { type: "string" },
      include: { type: "string", multiple: true },
      "upgrade-style": { type: "string" },
    },
  });
  const v = parsed.values;
  if (parsed.positionals.length !== 1) {
    throw new UsageError(
      `package takes one handler or artifact, got ${parsed.positionals.length}`,
    );
  }
  if (!v.name) throw new UsageError("package needs --name NAME");
  if (!v.version) throw new UsageError("package needs --version V");
  const style = v["upgrade-style"] ?? "handoff";
  if (style !== "handoff" && style !== "stop-start") {
    throw new UsageError(`--upgrade-style: "${style}" is not handoff or stop-start`);
  }
  const settings = parseServiceSettings(v, "package");
  const maintainer = v.maintainer ?? defaultMaintainer();
  if (!/^[^<>\n]+ <[^<>@\s]+@[^<>\s]+>$/.test(maintainer)) {
    throw new UsageError(`--maintainer: "${maintainer}" is not "Full Name <email>"`);
  }
  const arch = Deno.build.arch === "aarch64" ? "arm64" : "amd64";
  const file = `${v.name}_${v.version.replace(/^\d+:/, "")}_${arch}.deb`;
  let output = absolutePath(v.output ?? file);
  try {
    if (Deno.statSync(output).isDirectory) output = `${output}/${file}`;
  } catch {
    // A file to create.
  }
  try {
    const r = await buildPackage({
      source: absolutePath(parsed.positionals[0]),
      name: v.name,
      version: v.version,
      output,
      maintainer,
      description: v.description,
      style,
      include: (v.include ?? []).map((p) => absolutePath(p)),
      ...settings,
      print: (line) => console.log(line),
    });
    const mib = (n: number) => `${(n / (1 << 20)).toFixed(1)} MiB`;
    console.log(
      `packaged ${r.output} (${mib(r.bytes)}; artifact ${mib(r.artifactBytes)}) in ${
        formatMs(r.ms)
      }`,
    );
    return 0;
  } catch (err) {
    if (err instanceof UnitOptionError) throw new UsageError(cliOption(err));
    throw err;
  }
}

function defaultMaintainer(): string {
  const name = Deno.env.get("DEBFULLNAME") || Deno.env.get("NAME");
  const email = Deno.env.get("DEBEMAIL") || Deno.env.get("EMAIL");
  if (!name || !email) {
    throw new UsageError(
      'package needs --maintainer "Full Name <email>" (or $DEBFULLNAME and $DEBEMAIL)',
    );
  }
  return `${name} <${email}>`;
}
