/**
 * @module
 * The `apprun` command: picks the subcommand, runs it, and turns every error into one clear
 * line on stderr and an exit status (2 for usage, 1 for the rest). No logic of its own.
 * Importing it runs nothing (`apprun compile`'s entry module imports it and calls
 * {@linkcode runMain}); run as the main module, it runs the command line.
 */
import { AppRunError, describeError } from "../runtime/errors.ts";
import { serve, SERVE_USAGE } from "./serve.ts";
import { UsageError } from "./args.ts";
import { APPRUN_VERSION } from "../runtime/version.ts";
import { versionLine } from "../runtime/upgrade/build_info.ts";
import { install, INSTALL_USAGE } from "./install.ts";
import { ROLLBACK_USAGE, rollbackCommand, UPGRADE_USAGE, upgradeCommand } from "./upgrade.ts";
import { status, STATUS_USAGE } from "./status.ts";
import { check, CHECK_USAGE } from "./check.ts";
import { COMPILE_USAGE, compileCommand } from "./compile.ts";
import { PACKAGE_USAGE, packageCommand } from "./package.ts";

const USAGE =
  `apprun ${APPRUN_VERSION}: serve a TypeScript web service, upgrade it without dropping a connection

Usage: apprun <command> [options]

Commands:
  serve HANDLER     serve a handler (see apprun serve --help)
  install HANDLER|BINARY --name NAME --port N
                    install it as a systemd service (socket + service units)
  upgrade NEW       swap in NEW and restart through the fdstore; roll back if it fails
  rollback          swap the previous binary back in and restart
  status            the service's state (systemd or apprun's supervisor)
  check [HANDLER]   load the handler and print ok
  compile HANDLER -o NAME
                    one executable with apprun and the handler inside
  package HANDLER --name NAME --version V --port N
                    a .deb whose upgrades hand every connection over
  version           print the version

apprun <command> --help shows each command's options.

${SERVE_USAGE}`;

const USAGES: Record<string, string> = {
  serve: SERVE_USAGE,
  install: INSTALL_USAGE,
  upgrade: UPGRADE_USAGE,
  rollback: ROLLBACK_USAGE,
  status: STATUS_USAGE,
  check: CHECK_USAGE,
  compile: COMPILE_USAGE,
  package: PACKAGE_USAGE,
};

/** Runs one command line; returns the exit status. Throws for errors (see {@linkcode runMain}). */
export async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  if (cmd === undefined || cmd === "help" || cmd === "--help" || cmd === "-h") {
    console.log(USAGE);
    return cmd === undefined ? 2 : 0;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(USAGES[cmd] ?? USAGE);
    return 0;
  }
  switch (cmd) {
    case "serve":
      return await serve(rest);
    case "install":
      return await install(rest);
    case "upgrade":
      return await upgradeCommand(rest);
    case "rollback":
      return await rollbackCommand(rest);
    case "status":
      return await status(rest);
    case "check":
      return await check(rest);
    case "compile":
      return await compileCommand(rest);
    case "package":
      return await packageCommand(rest);
    case "version":
    case "--version":
      console.log(versionLine());
      return 0;
    default:
      throw new UsageError(`unknown command "${cmd}" (try apprun help)`);
  }
}

/** Runs `args` and exits: every error becomes one line on stderr and exit status 2 or 1. */
export async function runMain(args: string[] = Deno.args): Promise<never> {
  try {
    Deno.exit(await main(args));
  } catch (err) {
    const msg = err instanceof AppRunError ? err.message : describeError(err);
    // Under systemd (JOURNAL_STREAM) the line carries its priority: <3> is an error.
    const prefix = Deno.env.get("JOURNAL_STREAM") !== undefined ? "<3>" : "";
    console.error(`${prefix}apprun: ${msg}`);
    if (!(err instanceof AppRunError) && err instanceof Error && err.stack) {
      console.error(err.stack.split("\n").map((l) => prefix + l).join("\n"));
    }
    Deno.exit(err instanceof UsageError ? 2 : 1);
  }
}

if (import.meta.main) await runMain();
