/**
 * apprun under a real systemd 252 (a private user manager), with the units `units/` renders
 * for `apprun install --user`: socket activation gated by READY=1 and STATUS= in `systemctl
 * status`; 20 restarts in a row without hitting the start limit; a crash brought back by
 * Restart=on-failure; `stop` then `start` starting clean; the watchdog (a healthy process is
 * kept, a wedged event loop is killed); and a too-small FileDescriptorStoreMax= reported at start.
 */
import assert from "node:assert/strict";
import { isAvailable, startUserManager } from "../_systemd.ts";
import { sleep } from "../_helpers.ts";
import { ask, installApp } from "./_app.ts";

const reason = isAvailable();
if (reason) console.log(`skip: real-systemd tests: ${reason}`);
const opts = { ignore: reason !== null, sanitizeResources: false };

Deno.test({
  ...opts,
  name:
    "systemd: installed units: the first request activates the service, READY=1 gates it, STATUS= shows",
  async fn() {
    await using m = await startUserManager();
    const app = await installApp(m);
    assert.equal(
      await m.show("app.service", "ActiveState"),
      "inactive",
      "nothing runs before a request",
    );
    const [id] = await ask(app.port, "first");
    assert.equal(id, "first", "the request that activated the service is answered");
    assert.equal(await m.show("app.service", "ActiveState"), "active");
    await sleep(2500); // a STATUS= tick
    const status = (await m.systemctl("status", "--no-pager", "app.service")).stdout;
    assert.match(status, /Status: "Serving: \d+ connections/);
  },
});

Deno.test({
  ...opts,
  name: "systemd: 20 restarts in a row within a minute: no start-limit-hit",
  async fn() {
    await using m = await startUserManager();
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
  },
});

Deno.test({
  ...opts,
  name: "systemd: SIGKILL of the main process: Restart=on-failure brings it back and it serves",
  async fn() {
    await using m = await startUserManager();
    const app = await installApp(m);
    const [, pid] = await ask(app.port);
    Deno.kill(pid, "SIGKILL");
    let next = 0;
    for (let i = 0; i < 100 && (next === 0 || next === pid); i++) {
      await sleep(100);
      try {
        next = (await ask(app.port))[1];
      } catch {
        // between processes: the socket unit holds the connection until the next one accepts
      }
    }
    assert.ok(next !== 0 && next !== pid, `a new process answers (was ${pid}, now ${next})`);
    assert.equal(await m.show("app.service", "NRestarts"), "1");
  },
});

Deno.test({
  ...opts,
  name: "systemd: stop then start: the store is flushed and apprun starts clean",
  async fn() {
    await using m = await startUserManager();
    const app = await installApp(m);
    const conn = await Deno.connect({ port: app.port, hostname: "127.0.0.1" });
    await conn.write(new TextEncoder().encode("GET /r?id=k HTTP/1.1\r\nHost: t\r\n\r\n"));
    await conn.read(new Uint8Array(1024));
    assert.equal((await m.systemctl("stop", "app.service")).code, 0);
    // systemd 252 flushes the store on stop: the carried connection ends (EOF or reset).
    const buf = new Uint8Array(16);
    const end = await conn.read(buf).catch(() => null);
    assert.equal(end, null, "the connection was closed with the stop");
    conn.close();
    assert.equal(await m.show("app.service", "NFileDescriptorStore"), "0");
    assert.equal((await m.systemctl("start", "app.service")).code, 0);
    assert.equal((await ask(app.port, "clean"))[0], "clean");
    const log = await app.log();
    assert.doesNotMatch(log, /error|stranger|not ours|unreadable/i, log);
  },
});

Deno.test({
  ...opts,
  name:
    "systemd: WatchdogSec=: a healthy process is kept, a wedged event loop is killed and restarted",
  async fn() {
    await using m = await startUserManager();
    const app = await installApp(m, { watchdog: 1 });
    const [, pid] = await ask(app.port);
    await sleep(3000); // three watchdog periods
    assert.equal(await m.show("app.service", "MainPID"), String(pid), "still the same process");
    await fetch(`http://127.0.0.1:${app.port}/wedge`).then((r) => r.text());
    // The manager marks the kill as a watchdog failure (Result=watchdog) while it waits
    // RestartSec= before the next start; the manager's own log is rate-limited in kmsg.
    const results = new Set<string>();
    let next = pid;
    for (let i = 0; i < 100 && next === pid; i++) {
      await sleep(50);
      results.add(await m.show("app.service", "Result"));
      next = Number(await m.show("app.service", "MainPID")) || pid;
    }
    assert.ok(results.has("watchdog"), `Result went through watchdog (saw ${[...results]})`);
    await m.waitFor("app.service", "ActiveState", "active");
    const [id, servedBy] = await ask(app.port, "revived");
    assert.equal(id, "revived");
    assert.notEqual(servedBy, pid);
  },
});

Deno.test({
  ...opts,
  name: "systemd: FileDescriptorStoreMax=0 is reported at start, and a stop then drains instead",
  async fn() {
    await using m = await startUserManager();
    const app = await installApp(m);
    const path = `${m.unitDir}/app.service`;
    const text = await Deno.readTextFile(path);
    await Deno.writeTextFile(
      path,
      text.replace(/FileDescriptorStoreMax=\d+/, "FileDescriptorStoreMax=0"),
    );
    await m.daemonReload();
    await ask(app.port);
    let log = "";
    for (let i = 0; i < 50 && !/FileDescriptorStoreMax=0/.test(log); i++) {
      await sleep(100);
      log = await app.log();
    }
    assert.match(log, /FileDescriptorStoreMax=0: restarts will drain and close connections/);
  },
});
