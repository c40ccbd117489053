/**
 * `apprun serve --unix PATH` in a real process: served on the socket file (alone, or beside
 * --port), a stale socket file left by a crashed run is replaced, a file that is not a
 * socket is never deleted (one clear line, exit 1), and `@name` listens on an abstract socket.
 */
import assert from "node:assert/strict";
import { APPRUN, FIXTURES, type Proc, run, spawn, tempDir } from "../_proc.ts";
import { exchange, GET, RawClient } from "../_net.ts";
import { leaveStaleSocket } from "./_util.ts";

/** python3 CLIENT NAME REQUEST: sends REQUEST to the abstract socket NAME, prints the answer. */
const ABSTRACT_CLIENT = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect("\\0" + sys.argv[1])
s.sendall(sys.argv[2].encode())
while True:
    data = s.recv(65536)
    if not data:
        break
    sys.stdout.buffer.write(data)
`;

function serveUnix(args: string[]): Proc {
  return spawn(APPRUN, ["serve", `${FIXTURES}/echo.ts`, "--no-supervisor", ...args]);
}

async function getOverUnix(path: string, target: string) {
  using c = await RawClient.connectUnix(path);
  await c.write(GET(target));
  return await c.readResponse();
}

Deno.test("serve --unix: served on the socket file, listener named 'unix'", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/app.sock`;
  await using proc = serveUnix(["--unix", path]);
  await proc.waitFor(/listening on unix:\S+ \(unix\)/);
  assert.doesNotMatch(proc.log, /listening on http/, "no TCP listener unless asked");
  assert.ok(Deno.lstatSync(path).isSocket);
  const r = await getOverUnix(path, "/echo");
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).listener, "unix");
  proc.kill("SIGTERM");
  assert.equal((await proc.wait()).code, 0);
});

Deno.test("serve --unix: a stale socket file from a previous run is replaced", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/app.sock`;
  leaveStaleSocket(path);
  assert.ok(Deno.lstatSync(path).isSocket, "the stale file is there");
  await assert.rejects(Deno.connect({ transport: "unix", path }), "and nobody listens on it");
  await using proc = serveUnix(["--unix", path]);
  await proc.waitFor(/listening on unix:/);
  assert.equal((await getOverUnix(path, "/")).body, "Hello, World!");
});

Deno.test("serve --unix: a file that is not a socket is left alone; one line, exit 1", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/precious.txt`;
  await Deno.writeTextFile(path, "do not delete");
  const proc = serveUnix(["--unix", path]);
  const st = await proc.wait();
  assert.equal(st.code, 1);
  const lines = proc.log.split("\n").filter((l) => l !== "");
  assert.deepEqual(lines, [
    `apprun: cannot listen on ${path}: EADDRINUSE (address already in use)`,
  ]);
  assert.equal(await Deno.readTextFile(path), "do not delete");
});

Deno.test("serve --unix beside --port: both served", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/app.sock`;
  await using proc = serveUnix(["--port", "0", "--host", "127.0.0.1", "--unix", path]);
  const m = await proc.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+) \(http\)/);
  await proc.waitFor(/listening on unix:/);
  const tcp = await exchange(Number(m[1]), GET("/echo"));
  assert.equal(JSON.parse(tcp.body).listener, "http");
  const unix = await getOverUnix(path, "/echo");
  assert.equal(JSON.parse(unix.body).listener, "unix");
});

Deno.test("serve --unix @name: listens on an abstract socket", async () => {
  const name = `apprun-test-${crypto.randomUUID()}`;
  await using proc = serveUnix(["--unix", `@${name}`]);
  await proc.waitFor(new RegExp(`listening on unix:@${name} \\(unix\\)`));
  // Deno cannot connect to abstract sockets; python3 can (a leading NUL names one).
  const res = await run("python3", [
    "-c",
    ABSTRACT_CLIENT,
    name,
    GET("/", "Connection: close\r\n"),
  ]);
  assert.equal(res.code, 0, res.stderr);
  const text = res.stdout;
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.ok(text.endsWith("\r\n\r\nHello, World!"), text);
});

Deno.test({
  name: "serve --unix: a socket file another server is listening on is not taken over",
  // Regression test for a fixed bug: runtime/listen.ts removeStaleSocket() unlinks any socket file at PATH, live or not:
  // a second `apprun serve --unix PATH` silently steals the path, and the first server keeps
  // running but can no longer be reached. Only a socket nobody accepts on (connect() gives
  // ECONNREFUSED) is stale.
  fn: async () => {
    await using dir = await tempDir();
    const path = `${dir.path}/app.sock`;
    await using first = serveUnix(["--unix", path]);
    await first.waitFor(/listening on unix:/);
    const firstPid = (await getOverUnix(path, "/pid")).body;
    await using second = serveUnix(["--unix", path]);
    const st = await second.wait(5000);
    assert.equal(st.code, 1, second.log);
    assert.match(second.log, /apprun: cannot listen on .*app\.sock: .*in use/);
    assert.equal((await getOverUnix(path, "/pid")).body, firstPid, "the first server still has it");
  },
});
