/**
 * A burst of SIGHUPs to a supervised `apprun serve`: restart requests that come while a worker
 * is starting are merged into one restart after its READY=1 (as while stopping), so a burst
 * costs a few restarts, not one per signal: the start limit is not hit, the supervisor stays,
 * the port stays open and a keep-alive client is still answered.
 */
import assert from "node:assert/strict";
import { APPRUN, FIXTURES, isAlive, spawn, tempDir } from "../_proc.ts";
import { RawClient } from "../_net.ts";
import { sleep } from "../_poll.ts";

Deno.test("supervisor: 40 SIGHUPs 100 ms apart are merged, the service stays up", async () => {
  await using dir = await tempDir();
  await using proc = spawn(APPRUN, [
    "serve",
    `${FIXTURES}/echo.ts`,
    "--port",
    "0",
    "--host",
    "127.0.0.1",
    "--control",
    `${dir.path}/control.sock`,
  ], { env: { APPRUN_LOG: "info" } });
  const port = Number((await proc.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/))[1]);
  await proc.waitFor(/generation 1 ready/);
  using kept = await RawClient.connect(port);
  const ask = async (c: RawClient) => {
    await c.write("GET /pid HTTP/1.1\r\nHost: t\r\n\r\n");
    const r = await c.readResponse();
    assert.equal(r.status, 200);
    return Number(r.body);
  };
  const firstPid = await ask(kept);
  for (let i = 0; i < 40; i++) {
    proc.kill("SIGHUP");
    await sleep(100);
  }
  // Wait for the restarts to settle: the last ready generation is the last started one.
  const started = () => [...proc.log.matchAll(/generation (\d+): started/g)].length;
  const ready = () => [...proc.log.matchAll(/generation (\d+) ready/g)].length;
  // A reload is checked before it starts a worker: settled means no new start for longer than a
  // check takes, not only every started worker ready.
  const deadline = Date.now() + 20_000;
  let [seen, quietSince] = [-1, Date.now()];
  while (Date.now() < deadline) {
    assert.ok(isAlive(proc.pid), `the supervisor exited:\n${proc.log}`);
    if (started() !== seen) [seen, quietSince] = [started(), Date.now()];
    if (started() === ready() && Date.now() - quietSince > 2000) break;
    await sleep(100);
  }
  assert.doesNotMatch(proc.log, /start request repeated too quickly/);
  assert.ok(isAlive(proc.pid), `the supervisor exited:\n${proc.log}`);
  assert.equal(started(), ready(), proc.log);
  assert.ok(started() >= 2 && started() <= 30, `${started()} workers started for 40 SIGHUPs`);
  const lastPid = await ask(kept);
  assert.notEqual(lastPid, firstPid, "the kept connection is served by the newest worker");
  using fresh = await RawClient.connect(port);
  assert.equal(await ask(fresh), lastPid);
  proc.kill("SIGTERM");
  assert.equal((await proc.wait()).code, 0, proc.log);
});
