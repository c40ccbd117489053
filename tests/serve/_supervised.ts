/**
 * Helpers for the process-level tests of `apprun serve` started by hand (its embedded
 * supervisor): an app written into a private temp dir (which is also `XDG_RUNTIME_DIR`, so
 * `apprun reload` finds this test's supervisor and no other), the supervisor started on a
 * free port and followed to its first READY=1, a keep-alive client that asks which pid
 * answers, and `apprun` commands run to their end. Real processes and sockets only; every
 * resource has a dispose.
 */
import assert from "node:assert/strict";
import { APPRUN, type Proc, spawn } from "../_proc.ts";
import { RawClient } from "../_net.ts";

/** An app that answers `/pid` with its pid and anything else with `VERSION` from ./version.ts. */
export const APP = `import { VERSION } from "./version.ts";
export default {
  fetch(req: Request) {
    if (new URL(req.url).pathname === "/pid") return new Response(String(Deno.pid));
    return new Response(VERSION);
  },
};
`;

/** A private directory: the app's home and the supervisor's XDG_RUNTIME_DIR. */
export interface AppDir extends AsyncDisposable {
  path: string;
  /** The environment that makes this directory the runtime dir. */
  env: Record<string, string>;
}

/** Writes `files` (name → text) into a fresh 0700 temp dir. */
export async function appDir(files: Record<string, string>): Promise<AppDir> {
  const path = await Deno.makeTempDir({ prefix: "apprun-first-use-" });
  for (const [name, text] of Object.entries(files)) {
    await Deno.mkdir(`${path}/${name}`.replace(/\/[^/]*$/, ""), { recursive: true });
    await Deno.writeTextFile(`${path}/${name}`, text);
  }
  return {
    path,
    env: { XDG_RUNTIME_DIR: path, APPRUN_LOG: "info" },
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}

/** A supervised `apprun serve`, ready. */
export interface Supervised extends AsyncDisposable {
  proc: Proc;
  port: number;
  /** The supervisor's pid, from its start line. */
  pid: number;
}

/** `apprun serve APP --port 0 ARGS…` (spawned by `cmd`, default bin/apprun), once ready. */
export async function serveSupervised(
  dir: Pick<AppDir, "path" | "env">,
  app: string,
  args: string[] = [],
  cmd: string[] = [APPRUN],
): Promise<Supervised> {
  const proc = spawn(cmd[0], [
    ...cmd.slice(1),
    "serve",
    `${dir.path}/${app}`,
    "--port",
    "0",
    "--host",
    "127.0.0.1",
    ...args,
  ], { env: dir.env });
  const port = Number((await proc.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/))[1]);
  const pid = Number((await proc.waitFor(/supervisor pid (\d+); reload with/))[1]);
  return { proc, port, pid, [Symbol.asyncDispose]: () => proc[Symbol.asyncDispose]() };
}

/** Runs `apprun ARGS…` to its end; its exit code and everything it printed. */
export async function apprun(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; out: string }> {
  const out = await new Deno.Command(APPRUN, { args, env, stdin: "null" }).output();
  const dec = new TextDecoder();
  return { code: out.code, out: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

/** GET `path` on a kept connection; the body. */
export async function ask(c: RawClient, path = "/pid"): Promise<string> {
  await c.write(`GET ${path} HTTP/1.1\r\nHost: t\r\n\r\n`);
  const r = await c.readResponse();
  assert.equal(r.status, 200);
  return r.body;
}

export { RawClient };
