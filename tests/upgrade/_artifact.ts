/**
 * Helpers for the artifact tests: running a command with this checkout out of reach — in new
 * mount and network namespaces (`unshare`), with an empty tmpfs mounted over the checkout (so
 * no node_modules, no Deno, no apprun of ours) and no network at all (loopback down) — and a
 * keep-alive HTTP exchange over a unix socket, the one way in from outside those namespaces.
 */
import { ROOT } from "../_proc.ts";

const HIDE = 'mount -t tmpfs -o size=1m,mode=755 tmpfs "$1" && shift && exec "$@"';

/** Why commands cannot be confined here, or null. Needs root and unshare(1). */
export function whyNoConfinement(): string | null {
  if (Deno.uid() !== 0) return `unshare --mount needs root (uid ${Deno.uid()})`;
  try {
    const r = new Deno.Command("unshare", { args: confinedArgs(["/bin/true"]) }).outputSync();
    return r.code === 0
      ? null
      : `unshare --mount --net failed: ${new TextDecoder().decode(r.stderr)}`;
  } catch (err) {
    return `no unshare: ${(err as Error).message}`;
  }
}

/** `unshare` arguments that run `argv` with the checkout hidden and no network. */
export function confinedArgs(argv: string[]): string[] {
  return [
    "--mount",
    "--net",
    "--propagation",
    "private",
    "--",
    "/bin/sh",
    "-c",
    HIDE,
    "sh",
    ROOT,
    ...argv,
  ];
}

/** `argv`, confined, with exactly `env`. */
export function confinedCommand(argv: string[], env: Record<string, string>): Deno.Command {
  return new Deno.Command("unshare", {
    args: confinedArgs(argv),
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  });
}

/** GET `path` on a kept-alive unix connection; returns the body of the 200 answer. */
export async function requestOverUnix(conn: Deno.Conn, path: string): Promise<string> {
  await conn.write(new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: artifact\r\n\r\n`));
  let text = "";
  const buf = new Uint8Array(4096);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const end = text.indexOf("\r\n\r\n");
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text)?.[1] ?? -1);
    if (end >= 0 && length >= 0 && text.length >= end + 4 + length) {
      if (!text.startsWith("HTTP/1.1 200")) throw new Error(`answer: ${text.split("\r\n")[0]}`);
      return text.slice(end + 4, end + 4 + length);
    }
    if (Date.now() > deadline) throw new Error(`no complete answer to ${path}: ${text}`);
    const n = await conn.read(buf);
    if (n === null) throw new Error(`closed while waiting for ${path}: ${text}`);
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
}
