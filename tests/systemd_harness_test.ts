/**
 * @module
 * Proves tests/_systemd.ts against a real systemd: a socket-activated Type=notify service
 * answers a connection, and stopping the manager leaves no process, cgroup or runtime dir.
 */
import assert from "node:assert/strict";
import { isAvailable, startUserManager, type UserManager } from "./_systemd.ts";

const reason = isAvailable();
if (reason !== null) console.log(`systemd harness tests skipped: ${reason}`);

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

/** A port nobody listens on right now (bound then released: racy, but only against us). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = l.addr as Deno.NetAddr;
  l.close();
  return port;
}

async function readLine(conn: Deno.Conn): Promise<string> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(1024);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
    if (buf.subarray(0, n).includes(0x0a)) break;
  }
  return new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
}

function processState(pid: number): string | null {
  try {
    // /proc/<pid>/stat: "pid (comm) S …"; the state letter follows the last ")".
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return null;
  }
}

function isGone(pid: number): boolean {
  const state = processState(pid);
  return state === null || state === "Z";
}

async function writeEchoUnits(m: UserManager, port: number): Promise<void> {
  const script = `${m.dir}/notify_server.py`;
  await Deno.writeTextFile(script, NOTIFY_SERVER);
  await m.writeUnit(
    "echo.socket",
    `[Socket]\nListenStream=127.0.0.1:${port}\nFileDescriptorName=web\n`,
  );
  await m.writeUnit(
    "echo.service",
    `[Service]\nType=notify\nNotifyAccess=main\nExecStart=/usr/bin/python3 ${script}\n`,
  );
  await m.daemonReload();
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
      for (const dir of m.cgroupDirs) assert.ok(Deno.statSync(dir).isDirectory, dir);

      await writeEchoUnits(m, port);
      const started = await m.systemctl("start", "echo.socket");
      assert.equal(started.code, 0, started.stderr);
      assert.equal(await m.show("echo.service", "ActiveState"), "inactive");

      // The first connection activates the service; the kernel holds it in the backlog.
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      const line = await readLine(conn);
      conn.close();
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
      await writeEchoUnits(m, port);
      assert.equal((await m.systemctl("start", "echo.socket")).code, 0);
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      assert.match(await readLine(conn), /^hello /);
      conn.close();
      await m.waitFor("echo.service", "ActiveState", "active");
      servicePid = Number(await m.show("echo.service", "MainPID"));
      assert.ok(servicePid > 0);
      // A crash: the manager dies, its service stays behind in the manager's sub-cgroup.
      Deno.kill(m.pid, "SIGKILL");
      for (let i = 0; i < 100 && !isGone(m.pid); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(isGone(m.pid));
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

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
