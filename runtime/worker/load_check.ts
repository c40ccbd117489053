/**
 * @module
 * The check before a reload under apprun's supervisor: the worker command in check mode
 * (worker/command.ts), which loads the app as a worker would, binds nothing, and exits 0, or 1
 * with one line (Deno's own report for a module that does not parse). A reload whose check
 * fails is refused, so the running worker goes on serving (docs/design.md, "Running the
 * app"). Owns the check process until it ends: killed on timeout or abort, its output read
 * up to a bound.
 */
import { HandlerError } from "../handler.ts";
import type { WorkerCommand } from "../supervisor/mod.ts";

/** Options for {@linkcode checkLoads}. */
export interface CheckLoadsOptions {
  /** The worker command in check mode. */
  command: WorkerCommand;
  timeoutMs: number;
  /** Aborted when the supervisor stops: the check is killed. */
  signal?: AbortSignal;
}

/** Output kept from a check: its first lines say why; a chatty app's rest is dropped. */
const MAX_OUTPUT = 16 * 1024;

/**
 * Resolves when the app loads; rejects with a {@linkcode HandlerError} whose message is the
 * check's own words (its `apprun: ` prefix dropped when it is one line) when it does not.
 */
export async function checkLoads(opts: CheckLoadsOptions): Promise<void> {
  const { command, timeoutMs } = opts;
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), timeoutMs);
  const signals = [timeout.signal, ...(opts.signal ? [opts.signal] : [])];
  const child = new Deno.Command(command.path, {
    args: command.args,
    env: command.env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.any(signals),
  }).spawn();
  try {
    const [status, out, err] = await Promise.all([
      child.status,
      readCapped(child.stdout),
      readCapped(child.stderr),
    ]);
    // Killed by us (it exits 0 on SIGTERM while it holds nothing): never a pass.
    if (timeout.signal.aborted) {
      throw new HandlerError(
        "ERR_HANDLER_IMPORT",
        `the new version did not finish loading within ${timeoutMs / 1000} s`,
      );
    }
    if (opts.signal?.aborted) throw new HandlerError("ERR_HANDLER_IMPORT", "check aborted");
    if (status.success) return;
    throw new HandlerError("ERR_HANDLER_IMPORT", `the new version does not load: ${why(err, out)}`);
  } finally {
    clearTimeout(timer);
  }
}

/** The check's words: stderr (else stdout), colours removed; one line loses `apprun: `. */
function why(stderr: string, stdout: string): string {
  // deno-lint-ignore no-control-regex
  const all = (stderr.trim() || stdout.trim()).replace(/\x1b\[[0-9;]*m/g, "");
  // Deno's report, without the Rust backtrace RUST_BACKTRACE adds to it.
  const text = all.replace(/\n*Stack backtrace:\n[^]*$/, "").trim();
  if (text === "") return "the check exited with an error and said nothing";
  const lines = text.split("\n");
  return lines.length === 1 ? lines[0].replace(/^apprun: /, "") : `\n${text}`;
}

/** Reads a stream to its end, keeping the first {@linkcode MAX_OUTPUT} bytes. */
async function readCapped(stream: ReadableStream<Uint8Array>): Promise<string> {
  const kept: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    if (size >= MAX_OUTPUT) continue;
    const part = chunk.subarray(0, MAX_OUTPUT - size);
    kept.push(part);
    size += part.length;
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const part of kept) {
    all.set(part, at);
    at += part.length;
  }
  return new TextDecoder().decode(all);
}
