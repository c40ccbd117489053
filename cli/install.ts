/**
 * @module
 * `apprun install`: argument parsing, the mapping of unit-option errors back to the command
 * line's option names, and printing (or, with --dry-run, only printing) what
 * runtime/upgrade/install.ts plans, writes and runs.
 */
import { type Listener, parseListener, UnitOptionError } from "../units/mod.ts";
import {
  absolutePath,
  activate,
  buildInfo,
  checkConflicts,
  InstallError,
  type InstallPlan,
  planInstall,
  type Scope,
  type ServiceSettings,
  writeInstall,
} from "../runtime/upgrade/mod.ts";
import {
  parseCommandLine,
  parseCount,
  parseDuration,
  parsePort,
  UsageError,
} from "../runtime/args.ts";
import { defaultName, parseParallel } from "../runtime/worker/mod.ts";
import { checkHealthUrl } from "./upgrade.ts";

export const INSTALL_USAGE =
  `Usage: apprun install [HANDLER|BINARY] --name NAME (--port N | --listen SPEC…) [options]

Installs a service: the binary BIN (a copy of BINARY, or for a handler file an artifact
built from it as apprun compile does, which needs nothing from this checkout) in
/usr/local/lib/apprun/NAME/NAME (--user: ~/.local/lib/apprun/NAME/NAME), a manifest
beside it, and NAME.socket + NAME.service in /etc/systemd/system (--user:
~/.config/systemd/user). With systemd running it then runs daemon-reload and enable --now
on the socket(s); otherwise it prints what to run. It never overwrites a unit file that
apprun did not write, unless --force. A compiled binary installs itself when no
HANDLER|BINARY is given. Relative paths are taken from the working directory.

Options:
  --name NAME            the service's name (default: the file's name)
  --port N               listen on port N, every address (socket activation)
  --listen SPEC          PORT, HOST:PORT, [IPV6]:PORT or /unix/path; NAME=SPEC sets the fd
                         name (repeatable; not with --port)
  --user                 the calling user's systemd (systemctl --user)
  --root DIR             write into a staging tree for packagers: DIR/usr/lib/...; runs
                         nothing (ExecStart names the path without DIR)
  --dry-run              print the files and commands; write and run nothing
  --force                overwrite unit files and a binary apprun did not write
  --drain-timeout T      how long requests in flight may run at a restart (default 10s)
  --env K=V              an Environment= line (repeatable)
  --env-file FILE        an EnvironmentFile= (repeatable; -FILE: ignore if missing)
  --watchdog T           WatchdogSec= (apprun pings at half of it)
  --max-connections N    size LimitNOFILE= for N connections
  --parallel N           serve on N event loops (\`apprun serve --parallel N\` in ExecStart=)
  --health URL           checked by apprun upgrade after each restart (2xx)
`;

/** What --dry-run and a real run print, and exit codes. */
export async function install(args: string[]): Promise<number> {
  const opts = parseInstallArgs(args);
  let plan: InstallPlan;
  try {
    plan = await planInstall(opts.install);
  } catch (err) {
    if (err instanceof UnitOptionError) throw new UsageError(cliOption(err));
    throw err;
  }
  const where = opts.install.root !== undefined ? ` into ${opts.install.root}` : "";
  if (opts.isDryRun) {
    console.log(`apprun install --dry-run: ${plan.manifest.name} (${plan.manifest.scope})${where}`);
    await checkConflicts(plan, opts.isForce);
    for (const f of plan.files) {
      const mode = f.mode.toString(8).padStart(4, "0");
      if ("copyOf" in f.content) {
        console.log(`\n# would write ${f.path} (mode ${mode}): a copy of ${f.content.copyOf}`);
      } else if ("artifactOf" in f.content) {
        console.log(
          `\n# would write ${f.path} (mode ${mode}): an artifact of ${f.content.artifactOf}`,
        );
      } else {
        console.log(`\n# would write ${f.path} (mode ${mode}):\n${f.content.text.trimEnd()}`);
      }
    }
    if (opts.install.root === undefined) {
      console.log(`\n# would run (when systemd runs for the ${plan.manifest.scope} scope):`);
      for (const c of plan.commands) console.log(c.join(" "));
    }
    for (const n of plan.notes) console.log(`note: ${n}`);
    return 0;
  }
  await checkConflicts(plan, opts.isForce);
  await writeInstall(plan);
  console.log(`installed ${plan.manifest.name} (${plan.manifest.scope})${where}:`);
  for (const f of plan.files) console.log(`  wrote ${f.path}`);
  for (const n of plan.notes) console.log(`note: ${n}`);
  if (opts.install.root !== undefined) return 0;
  const act = await activate(plan);
  if (!act.hasSystemd) {
    const scope = plan.manifest.scope;
    console.log(
      `systemd is not running for the ${scope} scope here; to start ${plan.manifest.name}, run:`,
    );
    for (const c of plan.commands) console.log(`  ${c.join(" ")}`);
    const serve = serveHint(plan);
    if (serve) console.log(`or, without systemd: ${serve}`);
    return 0;
  }
  for (const r of act.ran) {
    console.log(`  ran ${r.command.join(" ")}${r.code === 0 ? "" : `: exit ${r.code}`}`);
    if (r.code !== 0) {
      throw new InstallError(`${r.command.join(" ")} failed: ${r.output.split("\n").pop()}`);
    }
  }
  console.log(
    `${plan.manifest.name} is listening; the first connection starts ${plan.manifest.name}.service`,
  );
  return 0;
}

/** Parsed `install` options. */
interface InstallArgs {
  install: Parameters<typeof planInstall>[0];
  isDryRun: boolean;
  isForce: boolean;
}

/** The options of the service itself, shared by `install` and `package`. */
export const SERVICE_OPTIONS = {
  port: { type: "string" },
  listen: { type: "string", multiple: true },
  "drain-timeout": { type: "string" },
  env: { type: "string", multiple: true },
  "env-file": { type: "string", multiple: true },
  watchdog: { type: "string" },
  "max-connections": { type: "string" },
  parallel: { type: "string" },
  health: { type: "string" },
} as const;

/** Parses {@linkcode SERVICE_OPTIONS}' values. Throws {@linkcode UsageError}. */
export function parseServiceSettings(
  v: Partial<Record<keyof typeof SERVICE_OPTIONS, string | string[]>>,
  command: string,
): ServiceSettings {
  const one = (k: keyof typeof SERVICE_OPTIONS) => v[k] as string | undefined;
  const many = (k: keyof typeof SERVICE_OPTIONS) => (v[k] ?? []) as string[];
  if (one("port") !== undefined && v.listen !== undefined) {
    throw new UsageError("--port and --listen: give one or the other");
  }
  let listeners: Listener[];
  if (one("port") !== undefined) {
    const port = parsePort("port", one("port")!);
    if (port === 0) throw new UsageError(`--port: 0 is not a port a socket unit can listen on`);
    listeners = [{ kind: "tcp", port }];
  } else if (v.listen !== undefined) {
    listeners = many("listen").map((spec) => {
      const m = /^([A-Za-z0-9_.-]+)=(.+)$/.exec(spec);
      try {
        const l = parseListener(m ? m[2] : spec, "--listen");
        return m ? { ...l, name: m[1] } : l;
      } catch (err) {
        if (err instanceof UnitOptionError) throw new UsageError(err.message);
        throw err;
      }
    });
  } else {
    throw new UsageError(`${command} needs --port N or --listen SPEC (where the service listens)`);
  }
  const environment: Record<string, string> = {};
  for (const kv of many("env")) {
    const i = kv.indexOf("=");
    if (i <= 0) throw new UsageError(`--env: "${kv}" is not NAME=VALUE`);
    environment[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const environmentFiles = many("env-file").map((f) =>
    f.startsWith("-") ? `-${absolutePath(f.slice(1))}` : absolutePath(f)
  );
  const health = one("health");
  if (health !== undefined) checkHealthUrl(health);
  const drain = one("drain-timeout");
  const watchdog = one("watchdog");
  const max = one("max-connections");
  const parallel = one("parallel");
  return {
    listeners,
    drainTimeoutMs: drain ? parseDuration("drain-timeout", drain) : 10_000,
    environment,
    environmentFiles,
    watchdogMs: watchdog !== undefined ? parseDuration("watchdog", watchdog) : undefined,
    maxConnections: max !== undefined ? parseCount("max-connections", max) : undefined,
    parallel: parallel !== undefined ? parseParallel(parallel) : undefined,
    health,
  };
}

function parseInstallArgs(args: string[]): InstallArgs {
  const parsed = parseCommandLine({
    args,
    allowPositionals: true,
    options: {
      ...SERVICE_OPTIONS,
      name: { type: "string" },
      user: { type: "boolean" },
      root: { type: "string" },
      "dry-run": { type: "boolean" },
      force: { type: "boolean" },
    },
  });
  const v = parsed.values;
  if (parsed.positionals.length > 1) {
    throw new UsageError(`install takes one handler or binary, got ${parsed.positionals.length}`);
  }
  let source = parsed.positionals[0];
  if (source === undefined) {
    const built = buildInfo();
    if (built?.artifact) source = built.artifact;
    else if (Deno.build.standalone) source = Deno.execPath();
    else {
      throw new UsageError("install needs a handler file or a binary (apprun compile makes one)");
    }
  }
  source = absolutePath(source);
  const settings = parseServiceSettings(v, "install");
  const root = v.root === undefined ? undefined : absolutePath(v.root);
  const scope: Scope = v.user ? "user" : "system";
  const home = Deno.env.get("HOME");
  if (scope === "user" && root === undefined && !home) {
    throw new UsageError("--user needs $HOME (where ~/.local/lib and ~/.config are)");
  }
  const name = v.name ?? (parsed.positionals[0] === undefined ? buildInfo()?.name : undefined) ??
    defaultName(source);
  return {
    install: {
      source,
      name,
      scope,
      root,
      home,
      configHome: Deno.env.get("XDG_CONFIG_HOME") || undefined,
      ...settings,
    },
    isDryRun: v["dry-run"] ?? false,
    isForce: v.force ?? false,
  };
}

// units/ names options as its API spells them; the operator typed these.
const CLI_OPTIONS: [RegExp, string][] = [
  [/^name$/, "--name"],
  [/^root$/, "--root"],
  [/^configHome$/, "XDG_CONFIG_HOME"],
  [/^home$/, "HOME"],
  [/^environment\.(.*)$/, "--env $1"],
  [/^environmentFiles\[\d+\]$/, "--env-file"],
  [/^watchdog$/, "--watchdog"],
  [/^drainTimeout$|^timeoutStop$/, "--drain-timeout"],
  [/^maxConnections$|^limitNoFile$/, "--max-connections"],
  [/^parallel$/, "--parallel"],
  [/^listeners\[(\d+)\].*$/, "--listen #$1"],
  [/^execStart\[\d+\]$/, "the binary's path"],
];

/** A {@linkcode UnitOptionError}'s message with the command line's option name. */
export function cliOption(err: UnitOptionError): string {
  const reason = err.message.slice(err.option.length + 2);
  for (const [re, name] of CLI_OPTIONS) {
    if (re.test(err.option)) return `${err.option.replace(re, name)}: ${reason}`;
  }
  return err.message;
}

/** `apprun serve --bin BIN --name NAME --port N` when the listeners map onto serve's options. */
function serveHint(plan: InstallPlan): string | null {
  const tcp = plan.manifest.listeners.filter((l) => l.kind === "tcp");
  const unix = plan.manifest.listeners.filter((l) => l.kind === "unix");
  if (tcp.length > 1) return null;
  const words = ["apprun", "serve", "--bin", plan.manifest.bin, "--name", plan.manifest.name];
  for (const l of tcp) {
    if (l.kind === "tcp") {
      words.push("--port", String(l.port), ...(l.host ? ["--host", l.host] : []));
    }
  }
  for (const l of unix) if (l.kind === "unix") words.push("--unix", l.path);
  return words.join(" ");
}
