/**
 * @module
 * `apprun compile HANDLER -o NAME`: argument parsing and printing around
 * runtime/upgrade/compile.ts, which writes the entry module and runs `deno compile`.
 */
import { compile, COMPILE_PERMISSIONS, formatMs } from "../runtime/upgrade/mod.ts";
import { parseCommandLine, UsageError } from "./args.ts";

export const COMPILE_USAGE = `Usage: apprun compile HANDLER -o NAME

Builds one executable, NAME, holding apprun and HANDLER (deno compile). It has every apprun
command with the handler built in: NAME serve [options], NAME check, NAME version,
NAME install --name NAME --port N (installs itself), NAME upgrade NEW.

Permissions baked in: ${COMPILE_PERMISSIONS.join(" ")}. apprun calls libc through FFI, which
can do anything the user can, so Deno's sandbox does not confine it: confine the service with
systemd (apprun install renders a hardened unit).

deno compile downloads its runtime (denort) unless DENORT_BIN names a local one: offline,
set DENORT_BIN=/path/to/denort (of the same Deno version).

Options:
  -o, --output NAME     the executable to write
`;

/** Runs `compile`. */
export async function compileCommand(args: string[]): Promise<number> {
  const parsed = parseCommandLine({
    args,
    allowPositionals: true,
    options: { output: { type: "string", short: "o" } },
  });
  const [handler, ...extra] = parsed.positionals;
  if (handler === undefined) throw new UsageError("compile needs a handler file");
  if (extra.length) throw new UsageError(`compile takes one handler file, got ${1 + extra.length}`);
  const output = parsed.values.output;
  if (!output) throw new UsageError("compile needs -o NAME (the executable to write)");
  const abs = (p: string) => p.startsWith("/") ? p : `${Deno.cwd()}/${p}`;
  const r = await compile({
    handler: abs(handler),
    output: abs(output),
    print: (line) => console.log(line),
  });
  console.log(`compiled ${output} in ${formatMs(r.ms)}: ${r.version}`);
  return 0;
}
