/**
 * The control socket (newline-delimited JSON over a 0600 unix socket) and its client,
 * supervisorRequest(): status, restart (with and without a new command), stop, bad requests,
 * and one supervisor per socket path.
 */
import assert from "node:assert/strict";
import { Supervisor, supervisorRequest } from "../../runtime/supervisor/mod.ts";
import { MemoryLog, pyWorker, withSupervisor } from "./_harness.ts";
import { RawClient } from "../_net.ts";
import { tempDir } from "../_proc.ts";

/** Sends `text` on a fresh connection to the control socket; returns the first reply line. */
async function rawRequest(path: string, text: string): Promise<string> {
  using c = await RawClient.connectUnix(path);
  await c.write(text);
  return await c.readLine();
}

Deno.test("supervisorRequest(): status, restart, restart with a new command, stop", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  const controlSocket = `${dir}/ctl.sock`;
  await withSupervisor({ controlSocket }, async ({ sup }) => {
    const first = await sup.start();
    assert.equal(Deno.statSync(controlSocket).mode! & 0o777, 0o600);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["ctl.sock"]);
    assert.deepEqual(await supervisorRequest(controlSocket, { cmd: "status" }), {
      ok: true,
      generation: 1,
      pid: first.pid,
      state: "ready",
      status: "",
      storedFds: [],
      lastHandoffMs: null,
      restarts: 0,
    });
    const restarted = await supervisorRequest(controlSocket, { cmd: "restart" });
    assert.equal(restarted.ok, true);
    if (!("handoffMs" in restarted)) throw new Error(JSON.stringify(restarted));
    assert.equal(restarted.generation, 2);
    assert.notEqual(restarted.pid, first.pid);
    assert.equal(typeof restarted.handoffMs, "number");
    const { path, args, env } = pyWorker({ TW_STATUS: "v2" });
    const upgraded = await supervisorRequest(controlSocket, {
      cmd: "restart",
      worker: { path, args, env },
    });
    assert.equal(upgraded.ok, true);
    const status = await supervisorRequest(controlSocket, { cmd: "status" });
    assert.ok(status.ok && "restarts" in status);
    assert.equal(status.status, "v2");
    assert.equal(status.restarts, 2);
    assert.equal(status.lastHandoffMs, (upgraded as { handoffMs: number }).handoffMs);
    const failed = await supervisorRequest(controlSocket, {
      cmd: "restart",
      worker: { path, args, env: { TW_START: "exit:2" } },
    });
    assert.equal(failed.ok, false);
    assert.match((failed as { error: string }).error, /failed to start \(exit-code\)/);
    assert.deepEqual(await supervisorRequest(controlSocket, { cmd: "stop" }), { ok: true });
    assert.equal(await sup.done, 0);
    assert.throws(() => Deno.statSync(controlSocket), Deno.errors.NotFound);
  });
});

Deno.test("the control socket answers bad requests and refuses a second supervisor", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  const controlSocket = `${dir}/ctl.sock`;
  await withSupervisor({ controlSocket }, async ({ sup }) => {
    await sup.start();
    assert.equal(
      await rawRequest(controlSocket, "{nope\n"),
      '{"ok":false,"error":"bad request: not JSON"}\n',
    );
    assert.equal(
      await rawRequest(controlSocket, '{"cmd":"dance"}\n'),
      '{"ok":false,"error":"unknown command: \\"dance\\""}\n',
    );
    const bad = await rawRequest(controlSocket, '{"cmd":"restart","worker":{"path":"x"}}\n');
    assert.match(bad, /"ok":false,"error":"the worker path must be absolute/);
    const other = new Supervisor({ worker: pyWorker(), controlSocket, log: new MemoryLog() });
    await assert.rejects(other.start(), /another supervisor is listening on/);
    assert.equal(await other.done, 1);
    assert.equal((await supervisorRequest(controlSocket, { cmd: "status" })).ok, true);
  });
  await assert.rejects(
    supervisorRequest(`${dir}/ctl.sock`, { cmd: "status" }),
    /no supervisor is listening/,
  );
});

Deno.test("a stale control socket file left by a dead supervisor is replaced", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  const controlSocket = `${dir}/ctl.sock`;
  const stale = Deno.listen({ transport: "unix", path: controlSocket });
  stale.close(); // the file stays, nobody listens
  await withSupervisor({ controlSocket }, async ({ sup }) => {
    await sup.start();
    assert.equal((await supervisorRequest(controlSocket, { cmd: "status" })).ok, true);
  });
});
