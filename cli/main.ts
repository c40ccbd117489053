/**
 * @module
 * The `apprun` command: picks the subcommand, runs it, and turns every error into one clear
 * line on stderr and an exit status (2 for usage, 1 for the rest). No logic of its own.
 * Importing it runs nothing (`apprun compile`'s entry module imports it and calls
 * {@linkcode runMain}); run as the main module, it runs the command line.
 */
import { AppRunError, describeError } from "../runtime/errors.ts";
import { UsageError } from "../runtime/args.ts";
import { APPRUN_VERSION } from "../runtime/version.ts";
import { writeFatal } from "../runtime/log.ts";

/** A command: its usage text and how to run it. */
interface Command {
  usage: string;
  run(args: string[]): Promise<number>;
}

/**
 * Each command's module, imported only when that command runs: `serve` under a service manager
 * starts no faster than its imports load (every cold start and handoff pays it).
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: async () => {
    const m = await import("./serve.ts");
    return { usage: m.SERVE_USAGE, run: m.serve };
  },
  install: async () => {
    const m = await import("./install.ts");
    return { usage: m.INSTALL_USAGE, run: m.install };
  },
  upgrade: async () => {
    const m = await import("./upgrade.ts");
    return { usage: m.UPGRADE_USAGE, run: m.upgradeCommand };
  },
  rollback: async () => {
    const m = await import("./upgrade.ts");
    return { usage: m.ROLLBACK_USAGE, run: m.rollbackCommand };
  },
  reload: async () => {
    const m = await import("./reload.ts");
    return { usage: m.RELOAD_USAGE, run: m.reload };
  },
  takeover: async () => {
    const m = await import("./takeover.ts");
    return { usage: m.TAKEOVER_USAGE, run: m.takeover };
  },
  status: async () => {
    const m = await import("./status.ts");
    return { usage: m.STATUS_USAGE, run: m.status };
  },
  check: async () => {
    const m = await import("./check.ts");
    return { usage: m.CHECK_USAGE, run: m.check };
  },
  compile: async () => {
    const m = await import("./compile.ts");
    return { usage: m.COMPILE_USAGE, run: m.compileCommand };
  },
  package: async () => {
    const m = await import("./package.ts");
    return { usage: m.PACKAGE_USAGE, run: m.packageCommand };
  },
  version: async () => {
    const m = await import("../runtime/upgrade/mod.ts");
    return {
      usage: "Usage: apprun version\n\nPrints apprun's version (and a compiled app's build).\n",
      run: () => {
        console.log(m.versionLine());
        return Promise.resolve(0);
      },
    };
  },
};

const USAGE =
  `apprun ${APPRUN_VERSION}: serve a TypeScript web service, upgrade it without dropping a connection

Usage: apprun <command> [options]

Commands:
  serve APP         run APP (a Deno app: Deno.serve or export default { fetch }) and serve it
  install APP|BINARY --name NAME --port N
                    install it as a systemd service (socket + service units)
  upgrade NEW       swap in NEW and restart through the fdstore; roll back if it fails
  rollback          swap the previous binary back in and restart
  reload [--name NAME]
                    restart a running service through the fdstore (no connection dropped);
                    under apprun's supervisor only once the new code loads
  status            the service's state (systemd or apprun's supervisor)
  check [APP]       load the app and print what it serves
  compile APP -o NAME
                    one executable with apprun and the app inside
  package APP --name NAME --version V --port N
                    a .deb whose upgrades hand every connection over
  version           print the version

apprun <command> --help (or apprun help <command>) shows each command's options.
`;

/** Runs one command line; returns the exit status. Throws for errors (see {@linkcode runMain}). */
export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === "help" && rest.length > 0) return await main([rest[0], "--help"]);
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    console.log(USAGE);
    return name === undefined ? 2 : 0;
  }
  const load = COMMANDS[name === "--version" ? "version" : name];
  if (load === undefined) throw new UsageError(`unknown command "${name}" (try apprun help)`);
  const command = await load();
  // `--help` asks for help only before `--`: after it, the words are the app's.
  const own = rest.includes("--") ? rest.slice(0, rest.indexOf("--")) : rest;
  if (own.includes("--help") || own.includes("-h")) {
    console.log(command.usage);
    return 0;
  }
  return await command.run(rest);
}

/** Runs `args` and exits: every error becomes one line on stderr and exit status 2 or 1. */
export async function runMain(args: string[] = Deno.args): Promise<never> {
  try {
    Deno.exit(await main(args));
  } catch (err) {
    const msg = err instanceof AppRunError ? err.message : describeError(err);
    const isBug = !(err instanceof AppRunError) && err instanceof Error;
    writeFatal(msg, isBug ? err.stack ?? "" : "");
    Deno.exit(err instanceof UsageError ? 2 : 1);
  }
}

if (import.meta.main) await runMain();
