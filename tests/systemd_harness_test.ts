/**
 * @module
 * Proves tests/_systemd.ts against a real systemd: a socket-activated Type=notify service
 * answers a connection, and stopping the manager leaves no process, cgroup or runtime dir.
 */
import assert from "node:assert/strict";
import { skipWithoutSystemd, startUserManager, type UserManager } from "./_systemd.ts";
import { exists, isAlive } from "./_proc.ts";
import { freePort, readLineFrom } from "./_net.ts";
import { waitUntil } from "./_poll.ts";

const reason = skipWithoutSystemd();

// Reads LISTEN_FDS, sends READY=1, answers each connection with one line and closes it.
const NOTIFY_SERVER = `
import os, socket
assert os.environ["LISTEN_PID"] == str(os.getpid())
assert int(os.environ["LISTEN_FDS"]) == 1
listener = socket.socket(fileno=3)
addr = os.environ["NOTIFY_SOCKET"]
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.sendto(b"READY=1", "\\0" + addr[1:] if addr.startswith("@") else addr)
while True:
    conn, _ = listener.accept()
    names = os.environ.get("LISTEN_FDNAMES", "")
    conn.sendall(("hello pid=%d names=%s\\n" % (os.getpid(), names)).encode())
    conn.close()
`;

const isGone = (pid: number) => !isAlive(pid);

async function writeEchoUnits(m: UserManager, port: number): Promise<void> {
  const script = `${m.dir}/notify_server.py`;
  await Deno.writeTextFile(script, NOTIFY_SERVER);
  await m.installUnits([
    {
      file: "echo.socket",
      text: `[Socket]\nListenStream=127.0.0.1:${port}\nFileDescriptorName=web\n`,
    },
    {
      file: "echo.service",
      text: `[Service]\nType=notify\nNotifyAccess=main\nExecStart=/usr/bin/python3 ${script}\n`,
    },
  ]);
}

Deno.test({
  name: "startUserManager() runs a socket-activated notify service and stops clean",
  ignore: reason !== null,
  async fn() {
    const port = freePort();
    const m = await startUserManager();
    let servicePid = 0;
    try {
      assert.equal(await m.show("", "SystemState"), "running");
      assert.ok(Deno.statSync(m.unitDir).isDirectory);
      assert.ok(Deno.statSync(`${m.runtimeDir}/systemd/notify`).isSocket);
      assert.ok(m.cgroupDirs.length > 0, "the manager has a cgroup");
      for (const dir of m.cgroupDirs) assert.ok(Deno.statSync(dir).isDirectory, dir);

      await writeEchoUnits(m, port);
      const started = await m.systemctl("start", "echo.socket");
      assert.equal(started.code, 0, started.stderr);
      assert.equal(await m.show("echo.service", "ActiveState"), "inactive");

      // The first connection activates the service; the kernel holds it in the backlog.
      const line = await readLineFrom({ hostname: "127.0.0.1", port });
      await m.waitFor("echo.service", "ActiveState", "active");
      servicePid = Number(await m.show("echo.service", "MainPID"));
      assert.ok(servicePid > 0);
      assert.equal(line, `hello pid=${servicePid} names=web\n`);
      assert.equal(await m.show("echo.service", "Type"), "notify");
      assert.equal(await m.show("echo.service", "NotifyAccess"), "main");

      const stopped = await m.systemctl("stop", "echo.service", "echo.socket");
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.equal(await m.show("echo.service", "MainPID"), "0");
      assert.equal(await m.show("echo.service", "ActiveState"), "inactive");
      assert.ok(isGone(servicePid), `service pid ${servicePid} still runs`);
      await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port }));
    } finally {
      await m.stop();
    }
    await m.stop(); // idempotent
    assert.ok(isGone(m.pid), `manager pid ${m.pid} still runs`);
    for (const dir of m.cgroupDirs) assert.equal(exists(dir), false, `${dir} left behind`);
    assert.equal(exists(m.runtimeDir), false, `${m.runtimeDir} left behind`);
    assert.equal(exists(m.dir), false, `${m.dir} left behind`);
  },
});

Deno.test({
  name: "UserManager.stop() cleans up after the manager was killed with a service running",
  ignore: reason !== null,
  async fn() {
    const port = freePort();
    let servicePid = 0;
    let cgroupDirs: readonly string[] = [];
    {
      await using m = await startUserManager();
      cgroupDirs = m.cgroupDirs;
      assert.ok(cgroupDirs.length > 0, "the manager has a cgroup");
      await writeEchoUnits(m, port);
      assert.equal((await m.systemctl("start", "echo.socket")).code, 0);
      assert.match(await readLineFrom({ hostname: "127.0.0.1", port }), /^hello /);
      await m.waitFor("echo.service", "ActiveState", "active");
      servicePid = Number(await m.show("echo.service", "MainPID"));
      assert.ok(servicePid > 0);
      // A crash: the manager dies, its service stays behind in the manager's sub-cgroup.
      Deno.kill(m.pid, "SIGKILL");
      await waitUntil(() => isGone(m.pid), `the manager (pid ${m.pid}) to die`, { everyMs: 20 });
      assert.equal(isGone(servicePid), false, "the orphaned service should still run");
    } // dispose: stop() runs here
    assert.ok(isGone(servicePid), `orphaned service pid ${servicePid} survived stop()`);
    for (const dir of cgroupDirs) assert.equal(exists(dir), false, `${dir} left behind`);
  },
});

Deno.test({
  name: "startUserManager(dir) keeps a caller's dir and gives managers their own cgroups",
  ignore: reason !== null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "apprun-systemd-caller-" });
    try {
      await using a = await startUserManager(dir);
      await using b = await startUserManager();
      assert.notDeepEqual(a.cgroupDirs, b.cgroupDirs);
      assert.notEqual(a.runtimeDir, b.runtimeDir);
      assert.equal(a.dir, dir);
      assert.equal(await a.show("", "SystemState"), "running");
      assert.equal(await b.show("", "SystemState"), "running");
      await a.stop();
      assert.ok(exists(dir), "a caller's dir is the caller's to remove");
      assert.equal(await b.show("", "SystemState"), "running", "stopping a must not touch b");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
