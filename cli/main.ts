/**
 * @module
 * The `apprun` command: picks the subcommand, runs it, and turns every error into one clear
 * line on stderr and an exit status (2 for usage, 1 for the rest). No logic of its own.
 */
import { AppRunError, describeError } from "../runtime/errors.ts";
import { serve, SERVE_USAGE } from "./serve.ts";
import { UsageError } from "./args.ts";
import { APPRUN_VERSION } from "../runtime/version.ts";

const USAGE =
  `apprun ${APPRUN_VERSION}: serve a TypeScript web service, upgrade it without dropping a connection

Usage: apprun <command> [options]

Commands:
  serve HANDLER     serve a handler (see apprun serve --help)
  version           print the version

${SERVE_USAGE}`;

async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  if (cmd === undefined || cmd === "help" || cmd === "--help" || cmd === "-h") {
    console.log(USAGE);
    return cmd === undefined ? 2 : 0;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(cmd === "serve" ? SERVE_USAGE : USAGE);
    return 0;
  }
  switch (cmd) {
    case "serve":
      return await serve(rest);
    case "version":
    case "--version":
      console.log(APPRUN_VERSION);
      return 0;
    default:
      throw new UsageError(`unknown command "${cmd}" (try apprun help)`);
  }
}

try {
  Deno.exit(await main(Deno.args));
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
