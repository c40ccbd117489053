/**
 * apprun under a real systemd 252 (a private user manager), with the units `units/` renders
 * for `apprun install --user`: socket activation gated by READY=1 and STATUS= in `systemctl
 * status`; 20 restarts in a row without hitting the start limit; a crash brought back by
 * Restart=on-failure; `stop` then `start` starting clean; the watchdog (a healthy process is
 * kept, a wedged event loop is killed); and a FileDescriptorStoreMax=0 reported at start, after
 * which a restart drains and closes connections instead of handing them off.
 */
import assert from "node:assert/strict";
import { systemdTest } from "../_systemd.ts";
import { ask, installApp } from "../_systemd_app.ts";
import { endingOf, GET, RawClient } from "../_net.ts";
import { sleep, waitUntil } from "../_poll.ts";

const opts = { sanitizeResources: false };

systemdTest(
  "systemd: installed units: the first request activates the service, READY=1 gates it, STATUS= shows",
  async (m) => {
    const app = await installApp(m);
    assert.equal(
      await m.show("app.service", "ActiveState"),
      "inactive",
      "nothing runs before a request",
    );
    const [id] = await ask(app.port, "first");
    assert.equal(id, "first", "the request that activated the service is answered");
    assert.equal(await m.show("app.service", "ActiveState"), "active");
    let status = "";
    await waitUntil( // the first STATUS= tick comes within 2 s
      async () =>
        /Status: "Serving: \d+ connections/.test(
          status = (await m.systemctl("status", "--no-pager", "app.service")).stdout,
        ),
      () => `a STATUS= line in systemctl status:\n${status}`,
      { timeoutMs: 5000, everyMs: 100 },
    );
  },
  opts,
);

systemdTest("systemd: 20 restarts in a row within a minute: no start-limit-hit", async (m) => {
  const app = await installApp(m);
  await ask(app.port);
  const pids = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const r = await m.systemctl("restart", "app.service");
    assert.equal(r.code, 0, `restart ${i}: ${r.stderr}`);
    pids.add(await m.show("app.service", "MainPID"));
  }
  assert.equal(pids.size, 20, "a new main process each time");
  assert.equal(await m.show("app.service", "ActiveState"), "active");
  assert.equal(await m.show("app.socket", "ActiveState"), "active");
  assert.notEqual(await m.show("app.service", "Result"), "start-limit-hit");
  assert.equal((await ask(app.port, "after"))[0], "after");
}, opts);

systemdTest(
  "systemd: SIGKILL of the main process: Restart=on-failure brings it back and it serves",
  async (m) => {
    const app = await installApp(m);
    const [, pid] = await ask(app.port);
    Deno.kill(pid, "SIGKILL");
    const next = await waitUntil(
      // Between processes the socket unit holds the connection until the next one accepts.
      () => ask(app.port).then(([, p]) => p !== pid ? p : 0, () => 0),
      `a process other than ${pid} to answer`,
      { everyMs: 100 },
    );
    assert.ok(next > 0 && next !== pid);
    assert.equal(await m.show("app.service", "NRestarts"), "1");
  },
  opts,
);

systemdTest("systemd: stop then start: the store is flushed and apprun starts clean", async (m) => {
  const app = await installApp(m);
  using conn = await RawClient.connect(app.port);
  await conn.write(GET("/r?id=k"));
  assert.equal((await conn.readResponse()).status, 200);
  assert.equal((await m.systemctl("stop", "app.service")).code, 0);
  // systemd 252 flushes the store on stop: the carried connection ends (EOF or reset).
  const ending = await endingOf(conn.conn, 5000);
  assert.ok(ending === "eof" || ending === "reset", `closed with the stop, not ${ending}`);
  assert.equal(await m.show("app.service", "NFileDescriptorStore"), "0");
  assert.equal((await m.systemctl("start", "app.service")).code, 0);
  assert.equal((await ask(app.port, "clean"))[0], "clean");
  const log = await app.log();
  assert.doesNotMatch(log, /error|stranger|not ours|unreadable/i, log);
}, opts);

systemdTest(
  "systemd: WatchdogSec=: a healthy process is kept, a wedged event loop is killed and restarted",
  async (m) => {
    const app = await installApp(m, { watchdog: 1 });
    const [, pid] = await ask(app.port);
    await sleep(3000); // three watchdog periods, in which the pings must keep it
    assert.equal(await m.show("app.service", "MainPID"), String(pid), "still the same process");
    await fetch(`http://127.0.0.1:${app.port}/wedge`).then((r) => r.text());
    // The manager marks the kill as a watchdog failure (Result=watchdog) while it waits
    // RestartSec= before the next start; the manager's own log is rate-limited in kmsg.
    const results = new Set<string>();
    await waitUntil(
      async () => {
        results.add(await m.show("app.service", "Result"));
        const next = Number(await m.show("app.service", "MainPID"));
        return next !== 0 && next !== pid;
      },
      () => `a new main process (results seen: ${[...results]})`,
      { everyMs: 50 },
    );
    assert.ok(results.has("watchdog"), `Result went through watchdog (saw ${[...results]})`);
    await m.waitFor("app.service", "ActiveState", "active");
    const [id, servedBy] = await ask(app.port, "revived");
    assert.equal(id, "revived");
    assert.notEqual(servedBy, pid);
  },
  opts,
);

systemdTest(
  "systemd: FileDescriptorStoreMax=0 is reported at start, and a restart then drains instead",
  async (m) => {
    const app = await installApp(m);
    const path = `${m.unitDir}/app.service`;
    const text = await Deno.readTextFile(path);
    await Deno.writeTextFile(
      path,
      text.replace(/FileDescriptorStoreMax=\d+/, "FileDescriptorStoreMax=0"),
    );
    await m.daemonReload();
    using idle = await RawClient.connect(app.port);
    await idle.write(GET("/r?id=idle"));
    assert.equal((await idle.readResponse()).status, 200);
    let log = "";
    await waitUntil(
      async () => /FileDescriptorStoreMax=0/.test(log = await app.log()),
      () => `the FileDescriptorStoreMax=0 warning in:\n${log}`,
      { everyMs: 100 },
    );
    assert.match(log, /FileDescriptorStoreMax=0: restarts will drain and close connections/);
    const r = await m.systemctl("restart", "app.service");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await endingOf(idle.conn), "eof", "the idle connection was closed, not carried");
    log = await app.log();
    assert.match(log, /SIGTERM: stopping/);
    assert.doesNotMatch(log, /handing off|resumed/);
    assert.equal((await ask(app.port, "after"))[0], "after", "the next process serves");
  },
  opts,
);
