/**
 * `apprun serve APP … -- ARGS` runs APP as Deno's main module with ARGS as its `Deno.args`,
 * whichever way the worker starts: under a manager (or `--no-supervisor`) bin/apprun execs the
 * worker at once — one process, the pid apprun was started as — and started by hand the
 * supervisor runs it.
 */
import assert from "node:assert/strict";
import { APPRUN, FIXTURES, spawn } from "../_proc.ts";
import { exchange, GET } from "../_net.ts";

const APP = `${FIXTURES}/args.ts`;

async function askApp(
  args: string[],
): Promise<{ body: { args: string[]; isMain: boolean; pid: number }; spawned: number }> {
  const proc = spawn(APPRUN, ["serve", APP, "--port", "0", "--host", "127.0.0.1", ...args]);
  try {
    const port = Number((await proc.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/))[1]);
    const r = await exchange(port, GET("/"));
    return { body: JSON.parse(r.body), spawned: proc.pid };
  } finally {
    proc.kill("SIGTERM");
    await proc.wait();
  }
}

Deno.test("serve --no-supervisor: the app's Deno.args are what follows --; one process", async () => {
  const { body, spawned } = await askApp([
    "--no-supervisor",
    "--idle-timeout",
    "5s",
    "--",
    "a",
    "--b",
    "c d",
  ]);
  assert.deepEqual(body.args, ["a", "--b", "c d"]);
  assert.equal(body.isMain, true);
  assert.equal(body.pid, spawned, "bin/apprun became the worker: no second process");
});

Deno.test("serve under the supervisor: the app's Deno.args are what follows --", async () => {
  const { body, spawned } = await askApp(["--", "x"]);
  assert.deepEqual(body.args, ["x"]);
  assert.equal(body.isMain, true);
  assert.notEqual(body.pid, spawned, "the supervisor runs the worker");
});

Deno.test("serve --no-supervisor with no app arguments: Deno.args is empty", async () => {
  const { body } = await askApp(["--no-supervisor"]);
  assert.deepEqual(body.args, []);
});
