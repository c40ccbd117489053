/**
 * @module
 * `apprun compile HANDLER -o NAME`: argument parsing and printing around
 * runtime/upgrade/compile.ts, which builds the executable (apprun's own single-file format,
 * or `deno compile`'s).
 */
import {
  absolutePath,
  compile,
  COMPILE_PERMISSIONS,
  type CompileFormat,
  formatMs,
} from "../runtime/upgrade/mod.ts";
import { parseCommandLine, UsageError } from "../runtime/args.ts";

export const COMPILE_USAGE = `Usage: apprun compile HANDLER -o NAME [options]

Builds one executable, NAME, holding apprun and HANDLER, that needs nothing from this
machine at run time: no checkout, no node_modules, no network, no Deno cache. It has every
apprun command with the handler built in: NAME serve [options], NAME check, NAME version,
NAME install --name NAME --port N (installs itself), NAME upgrade NEW.

Two forms (--format):
  apprun   apprun's own format: a /bin/sh header and a payload holding Deno (from the npm
           package), apprun, the handler's module graph and its npm packages. The first
           run unpacks it (~1 s) into a directory named by its hash — the service's
           CacheDirectory=, else ~/.cache/apprun — checking every file; later runs start as
           fast as deno run. Needs sh, tar, gzip and coreutils on the target.
  deno     deno compile's output (permissions baked in: ${COMPILE_PERMISSIONS.join(" ")}).
           deno compile downloads its runtime (denort) unless DENORT_BIN names a local one.
  auto     deno when denort can be had, else apprun (the default).

apprun calls libc through FFI, which can do anything the user can, so Deno's sandbox does
not confine it: confine the service with systemd (apprun install renders a hardened unit).

Options:
  -o, --output NAME      the executable to write
  --format F             auto, apprun or deno (default auto)
  --name NAME            the service's name it reports and installs as (default: NAME's)
  --app-version V        the app's own version, shown by NAME version
  --include PATH         a file or directory the app reads at run time (repeatable; apprun)
`;

/** Runs `compile`. */
export async function compileCommand(args: string[]): Promise<number> {
  const parsed = parseCommandLine({
    args,
    allowPositionals: true,
    options: {
      output: { type: "string", short: "o" },
      format: { type: "string" },
      name: { type: "string" },
      "app-version": { type: "string" },
      include: { type: "string", multiple: true },
    },
  });
  const [handler, ...extra] = parsed.positionals;
  if (handler === undefined) throw new UsageError("compile needs a handler file");
  if (extra.length) throw new UsageError(`compile takes one handler file, got ${1 + extra.length}`);
  const v = parsed.values;
  const output = v.output;
  if (!output) throw new UsageError("compile needs -o NAME (the executable to write)");
  const format = v.format ?? "auto";
  if (format !== "auto" && format !== "apprun" && format !== "deno") {
    throw new UsageError(`--format: "${format}" is not auto, apprun or deno`);
  }
  const r = await compile({
    handler: absolutePath(handler),
    output: absolutePath(output),
    format: format as CompileFormat,
    name: v.name,
    appVersion: v["app-version"],
    include: (v.include ?? []).map((p) => absolutePath(p)),
    print: (line) => console.log(line),
  });
  const mb = (r.bytes / (1 << 20)).toFixed(1);
  console.log(
    `compiled ${output} (${r.format} format, ${mb} MiB) in ${formatMs(r.ms)}: ${r.version}`,
  );
  return 0;
}
