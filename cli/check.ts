/**
 * @module
 * `apprun check [HANDLER]`: loads the handler (the one built in when none is given) the way
 * `serve` does and prints `ok`; a handler that cannot be used is one line and exit 1. What
 * `apprun upgrade` runs as `NEW check` before it touches anything.
 */
import { loadHandler } from "../runtime/handler.ts";
import { parseCommandLine, UsageError } from "./args.ts";

export const CHECK_USAGE = `Usage: apprun check [HANDLER]

Loads HANDLER (or, in a compiled binary, the handler built in) as apprun serve would, and
prints "ok" (exit 0); a handler that cannot be used prints one line and exits 1.
`;

/** Runs `check`. */
export async function check(args: string[]): Promise<number> {
  const { positionals } = parseCommandLine({ args, allowPositionals: true, options: {} });
  if (positionals.length > 1) {
    throw new UsageError(`check takes one handler file, got ${positionals.length}`);
  }
  await loadHandler(positionals[0] ?? "");
  console.log("ok");
  return 0;
}
