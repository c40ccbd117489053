/**
 * `runSupervisor()` as a real process, signalled as a service manager is: SIGTERM stops the
 * worker and flushes the store (a stored connection then sees EOF), SIGINT too, SIGHUP
 * restarts the worker with the store.
 */
import assert from "node:assert/strict";
import { DENO, isAlive, type Proc, spawn } from "../_proc.ts";
import { LineClient, pyWorker } from "./_harness.ts";

const SUPERVISE = new URL("./fixtures/supervise.ts", import.meta.url).pathname;

async function supervise(config: Record<string, unknown> = {}): Promise<[Proc, number]> {
  const proc = spawn(DENO, [
    "run",
    "-A",
    SUPERVISE,
    JSON.stringify({ worker: pyWorker(), ...config }),
  ]);
  const m = await proc.waitFor(/supervise: port (\d+)/);
  await proc.waitFor(/generation 1 ready/);
  return [proc, Number(m[1])];
}

Deno.test("SIGTERM to the supervisor stops the worker, flushes the store, exits 0", async () => {
  const [proc, port] = await supervise();
  await using _ = proc;
  const c = await LineClient.connect(port);
  const { pid } = await c.request({ cmd: "info" });
  await c.request({ cmd: "notify", lines: ["FDSTORE=1", "FDNAME=c", "FDPOLL=0"], attach: "conn" });
  await c.request({ cmd: "barrier" });
  await c.request({ cmd: "close" });
  assert.equal(await c.waitEof(300), false, "the stored copy should keep the connection open");
  proc.kill("SIGTERM");
  const status = await proc.wait();
  assert.equal(status.code, 0, proc.log);
  assert.equal(await c.waitEof(2000), true, "the stored connection was not closed");
  assert.match(proc.log, /SIGTERM: stopping/);
  assert.match(proc.log, new RegExp(`SIGTERM to pid ${pid} \\(stop\\)`));
  assert.match(proc.log, /fdstore: flushing 1 stored fd/);
  assert.equal(isAlive(pid), false);
  await c.close();
});

Deno.test("SIGINT to the supervisor stops it too; SIGHUP restarts the worker", async () => {
  const [proc, port] = await supervise();
  await using _ = proc;
  const c = await LineClient.connect(port);
  const first = (await c.request({ cmd: "info" })).pid;
  await c.request({ cmd: "notify", lines: ["FDSTORE=1", "FDNAME=c", "FDPOLL=0"], attach: "conn" });
  await c.request({ cmd: "barrier" });
  proc.kill("SIGHUP");
  const m = await proc.waitFor(/generation 2 ready: pid (\d+), handoff took (\d+) ms/);
  assert.notEqual(Number(m[1]), first);
  assert.equal((await c.request({ cmd: "info" })).pid, Number(m[1]));
  proc.kill("SIGINT");
  assert.equal((await proc.wait()).code, 0);
  assert.match(proc.log, /SIGINT: stopping/);
  assert.equal(await c.waitEof(2000), true);
  await c.close();
});
