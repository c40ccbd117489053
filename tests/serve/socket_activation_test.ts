/**
 * `apprun serve` under real socket activation: `systemd-socket-activate` binds the sockets,
 * then execs `bin/apprun` (which execs Deno, keeping the pid LISTEN_PID names). Named TCP
 * IPv4, IPv6 and unix sockets served at once; the three variables unset in the server;
 * datagram and seqpacket sockets refused with one clear line; LISTEN_PID of another process
 * ignored. sd_listen_fds(3), systemd-socket-activate(1).
 */
import assert from "node:assert/strict";
import { APPRUN, FIXTURES, tempDir } from "../_proc.ts";
import { freePort, GET, RawClient } from "../_net.ts";
import { noSocketActivate, poke, socketActivate } from "./_util.ts";
import { SOCK_DGRAM, SOCK_SEQPACKET } from "../../runtime/sys/mod.ts";

const ECHO = `${FIXTURES}/echo.ts`;

if (noSocketActivate) console.log(`skip: socket activation tests: ${noSocketActivate}`);
/** A test that needs systemd-socket-activate: ignored (the reason printed) where it is missing. */
const activatedTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: noSocketActivate !== null, fn });

activatedTest("serve: socket-activated with named IPv4, IPv6 and unix sockets", async () => {
  await using dir = await tempDir();
  const sock = `${dir.path}/admin.sock`;
  const { proc, info } = await socketActivate(() => {
    const v4 = freePort(), v6 = freePort("::1");
    return {
      info: { v4, v6 },
      args: [
        ...["-l", `127.0.0.1:${v4}`, "-l", `[::1]:${v6}`, "-l", sock],
        "--fdname=web:web6:admin",
        "--",
        ...[APPRUN, "serve", ECHO],
      ],
    };
  });
  await using _proc = proc;

  // The first connection makes the activator exec apprun; it waits in the backlog meanwhile.
  {
    using c = await RawClient.connect(info.v4);
    await c.write(GET("/echo"));
    const r = await c.readResponse(15_000);
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).listener, "web");
  }
  await proc.waitFor(/listening on unix:/);
  const esc = sock.replaceAll(".", "\\.");
  assert.match(proc.log, new RegExp(`listening on http://127\\.0\\.0\\.1:${info.v4} \\(web\\)`));
  assert.match(proc.log, new RegExp(`listening on http://\\[::1\\]:${info.v6} \\(web6\\)`));
  assert.match(proc.log, new RegExp(`listening on unix:${esc} \\(admin\\)`));

  {
    using c = await RawClient.connect(info.v6, "::1");
    await c.write(GET("/echo"));
    const r = await c.readResponse();
    assert.equal(r.status, 200);
    const body = JSON.parse(r.body);
    assert.equal(body.listener, "web6");
    assert.equal(body.remoteAddr.hostname, "::1");
  }
  {
    using c = await RawClient.connectUnix(sock);
    await c.write(GET("/echo"));
    const r = await c.readResponse();
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).listener, "admin");
  }
  {
    // The activator exec'd: the server is the process we started, so LISTEN_PID was ours.
    using c = await RawClient.connectUnix(sock);
    await c.write(GET("/pid") + GET("/env"));
    assert.equal((await c.readResponse()).body, String(proc.pid));
    assert.deepEqual(JSON.parse((await c.readResponse()).body), {
      LISTEN_FDS: null,
      LISTEN_PID: null,
      LISTEN_FDNAMES: null,
    });
  }

  proc.kill("SIGTERM");
  const st = await proc.wait();
  assert.equal(st.code, 0, proc.log);
  assert.match(proc.log, /stopped/);
});

activatedTest("serve: socket-activated without --fdname, fds are named 'unknown'", async () => {
  const { proc, info } = await socketActivate(() => {
    const port = freePort();
    return { info: port, args: ["-l", `127.0.0.1:${port}`, "--", APPRUN, "serve", ECHO] };
  });
  await using _proc = proc;
  using c = await RawClient.connect(info);
  await c.write(GET("/echo"));
  const r = await c.readResponse(15_000);
  assert.equal(JSON.parse(r.body).listener, "unknown");
  assert.match(proc.log, new RegExp(`listening on http://127\\.0\\.0\\.1:${info} \\(unknown\\)`));
});

for (const kind of ["datagram", "seqpacket"] as const) {
  activatedTest(
    `serve: a ${kind} socket passed by the manager is refused with one line`,
    async () => {
      await using dir = await tempDir();
      const path = `${dir.path}/${kind}.sock`;
      const { proc } = await socketActivate(() => ({
        info: null,
        args: ["-l", path, `--${kind}`, "--fdname=bad", "--", APPRUN, "serve", ECHO],
      }));
      await using _proc = proc;
      // Wake the activator: a datagram for SOCK_DGRAM, a connection for SOCK_SEQPACKET.
      poke(path, kind === "datagram" ? SOCK_DGRAM : SOCK_SEQPACKET);
      const st = await proc.wait();
      assert.notEqual(st.code, 0);
      const apprunLines = proc.log.split("\n").filter((l) => l.startsWith("apprun:"));
      assert.deepEqual(apprunLines, [
        `apprun: fd 3 ("bad") is a ${kind} socket: apprun serves stream sockets (ListenStream=)`,
      ], proc.log);
      assert.doesNotMatch(proc.log, /^\s+at /m, "no stack trace");
      assert.doesNotMatch(proc.log, /listening on/);
    },
  );
}

activatedTest("serve: a connected socket (Accept=yes) is refused with one line", async () => {
  // With --accept the activator forks one child per connection and passes it that
  // connection at fd 3: not a listener, so apprun must refuse it.
  const { proc, info } = await socketActivate(() => {
    const port = freePort();
    return { info: port, args: ["-a", "-l", `127.0.0.1:${port}`, "--", APPRUN, "serve", ECHO] };
  });
  await using _proc = proc;
  using c = await RawClient.connect(info);
  await c.write(GET("/"));
  const m = await proc.waitFor(/Child \d+ died with code (\d+)/);
  assert.equal(m[1], "1");
  assert.equal(await c.readToEnd(), "", "the connection is closed unanswered");
  const apprunLines = proc.log.split("\n").filter((l) => l.startsWith("apprun:"));
  assert.deepEqual(apprunLines, [
    'apprun: fd 3 ("unknown") is a connected socket, not a listening one (Accept=no is required)',
  ]);
  assert.doesNotMatch(proc.log, /^\s+at /m, "no stack trace");
});

activatedTest("serve: LISTEN_PID of another process: the passed fds are not used", async () => {
  // The activator sets LISTEN_PID to its pid, which becomes ours through exec; a shell in
  // between changes it to another pid before exec'ing apprun (same pid still).
  const { proc, info } = await socketActivate(() => {
    const port = freePort();
    return {
      info: port,
      args: [
        ...["-l", `127.0.0.1:${port}`, "--fdname=web", "--"],
        ...["sh", "-c", 'LISTEN_PID=$((LISTEN_PID + 1)) exec "$0" "$@"'],
        ...[APPRUN, "serve", ECHO, "--port", "0", "--host", "127.0.0.1"],
      ],
    };
  });
  await using _proc = proc;
  // This connection wakes the activator. apprun must not accept it: fd 3 is not its own.
  using trigger = await RawClient.connect(info);
  await trigger.write(GET("/echo"));
  const m = await proc.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+) \((\w+)\)/);
  assert.notEqual(Number(m[1]), info, "it opened its own listener from --port");
  assert.equal(m[2], "http");
  assert.doesNotMatch(proc.log, /\(web\)/);

  {
    using c = await RawClient.connect(Number(m[1]));
    await c.write(GET("/env"));
    const r = await c.readResponse();
    assert.deepEqual(JSON.parse(r.body), {
      LISTEN_FDS: null,
      LISTEN_PID: null,
      LISTEN_FDNAMES: null,
    }, "the variables are unset even when they were not ours");
  }
  // The request on the activator's socket stays unanswered: nobody accepts on fd 3.
  await assert.rejects(trigger.readUntil((b) => b.length > 0, 1000), /read timed out/);

  proc.kill("SIGTERM");
  assert.equal((await proc.wait()).code, 0);
});
