/**
 * Loading the handler module in a real `apprun serve` process: every way a module can be
 * wrong ends in one line on stderr naming the file and the problem, a non-zero exit and no
 * stack trace; the three accepted shapes (`{ fetch }`, a Hono app, a bare function) serve;
 * `onListen` is called with the address. Broken modules are written to a temp dir by the
 * test (a syntax error cannot live in tests/fixtures: `deno check` reads that folder).
 */
import assert from "node:assert/strict";
import { APPRUN, ROOT, serveFixture, spawn, tempDir } from "../_proc.ts";
import { exchange, GET } from "../_net.ts";

/** Runs `apprun serve FILE --port 0`, which must fail; returns its exit code and output. */
async function serveMustFail(file: string, env: Record<string, string> = {}) {
  const proc = spawn(APPRUN, [
    "serve",
    file,
    "--no-supervisor",
    "--port",
    "0",
    "--host",
    "127.0.0.1",
  ], { env });
  const st = await proc.wait();
  const lines = proc.log.split("\n").filter((l) => l !== "");
  return { code: st.code, lines, log: proc.log };
}

const BROKEN: { name: string; source: string; problem: RegExp }[] = [
  {
    name: "no default export",
    source: "export const fetch = () => new Response('x');\n",
    problem: /has no default export and calls no Deno\.serve/,
  },
  { name: "default export is a number", source: "export default 42;\n", problem: /is a number/ },
  { name: "default export is null", source: "export default null;\n", problem: /is null/ },
  {
    name: "default export is an object without fetch",
    source: "export default { handle: () => new Response('x') };\n",
    problem: /is an object without a fetch\(\) method/,
  },
  {
    name: "fetch is not a function",
    source: "export default { fetch: 'nope' };\n",
    problem: /is an object without a fetch\(\) method/,
  },
  {
    name: "throws at import time",
    source: "throw new Error('no database configured');\nexport default () => new Response();\n",
    problem: /failed to load: .*no database configured/,
  },
  {
    name: "rejects at import time (top-level await)",
    source: "await Promise.reject(new RangeError('bad config value'));\n" +
      "export default () => new Response();\n",
    problem: /failed to load: .*bad config value/,
  },
];

/**
 * A module that does not parse, or imports one that does not exist, never runs: Deno reports it
 * itself, before any of apprun's code can (the app is Deno's main module). Its report names the
 * file and the place, and the process exits 1 at once.
 */
const UNLOADABLE: { name: string; source: string; problem: RegExp }[] = [
  {
    name: "syntax error",
    source: "export default {\n  fetch(req) { return new Response('x') \n};\nconst = ;\n",
    problem: /SyntaxError: .*(parse|Expected|Unexpected)/i,
  },
  {
    name: "imports a module that does not exist",
    source: "import './not-there.ts';\nexport default () => new Response();\n",
    problem: /not-there\.ts/,
  },
];

for (const { name, source, problem } of UNLOADABLE) {
  Deno.test(`serve: handler ${name} → Deno's own report naming the place, exit 1`, async () => {
    await using dir = await tempDir();
    const file = `${dir.path}/handler.ts`;
    await Deno.writeTextFile(file, source);
    const r = await serveMustFail(file);
    assert.equal(r.code, 1, r.log);
    assert.match(r.log, problem);
    assert.match(r.log, /handler\.ts(:\d+:\d+)?/);
    assert.doesNotMatch(r.log, /runtime\/worker|cli\/main/, "no apprun stack");
  });
}

for (const { name, source, problem } of BROKEN) {
  Deno.test(`serve: handler ${name} → one clear line, exit 1`, async () => {
    await using dir = await tempDir();
    const file = `${dir.path}/handler.ts`;
    await Deno.writeTextFile(file, source);
    const r = await serveMustFail(file);
    assert.equal(r.code, 1, r.log);
    assert.equal(r.lines.length, 1, `exactly one line, got:\n${r.log}`);
    const [line] = r.lines;
    assert.ok(line.startsWith("apprun: "), line);
    assert.ok(line.includes(file), `names the file: ${line}`);
    assert.match(line, problem);
    assert.ok(line.length < 400, `one short line, got ${line.length} chars`);
  });
}

Deno.test({
  name: "serve: handler syntax error → the report says where (file:line:col)",
  fn: async () => {
    await using dir = await tempDir();
    const file = `${dir.path}/handler.ts`;
    await Deno.writeTextFile(file, "export default {\n  fetch() {}\n;\n");
    const r = await serveMustFail(file);
    assert.match(r.log, /handler\.ts:3:\d+/);
  },
});

Deno.test("serve: a throw at import names where it was thrown (file:line:col)", async () => {
  await using dir = await tempDir();
  const file = `${dir.path}/handler.ts`;
  await Deno.writeTextFile(file, "const x = 1;\nif (x) throw new TypeError('bad setting');\n");
  const r = await serveMustFail(file);
  assert.equal(r.lines.length, 1, r.log);
  assert.match(
    r.lines[0],
    /failed to load: TypeError: bad setting \(file:\/\/.*handler\.ts:2:\d+\)/,
  );
});

Deno.test("serve: handler file missing → one clear line, exit 1", async () => {
  await using dir = await tempDir();
  const file = `${dir.path}/nope.ts`;
  const r = await serveMustFail(file);
  assert.equal(r.code, 1);
  assert.deepEqual(r.lines, [`apprun: handler file not found: ${file}`]);
});

Deno.test("serve: handler path is a directory → one clear line, exit 1", async () => {
  await using dir = await tempDir();
  const r = await serveMustFail(dir.path);
  assert.equal(r.code, 1);
  assert.deepEqual(r.lines, [`apprun: handler ${dir.path} is not a file`]);
});

Deno.test("serve: a relative handler path is resolved against the working directory", async () => {
  await using proc = spawn(APPRUN, [
    ...["serve", "fixtures/probe.ts", "--no-supervisor", "--port", "0", "--host", "127.0.0.1"],
  ], { cwd: `${ROOT}/tests` });
  const m = await proc.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
  assert.equal((await exchange(Number(m[1]), GET("/x"))).body, "probe");
  const r = await serveMustFail("no/such/handler.ts");
  assert.deepEqual(r.lines, ["apprun: handler file not found: no/such/handler.ts"]);
});

Deno.test("serve: export default { fetch } serves, and onListen gets the address", async () => {
  await using srv = await serveFixture("probe.ts");
  const r = await exchange(srv.port, GET("/"));
  assert.equal(r.status, 200);
  assert.equal(r.body, "probe");
  const addr = JSON.parse((await exchange(srv.port, GET("/on-listen"))).body);
  assert.equal(addr.hostname, "127.0.0.1");
  assert.equal(addr.port, srv.port);
  assert.match(srv.proc.log, new RegExp(`probe: onListen .*"port":${srv.port}`));
});

Deno.test("serve: export default (req, info) => Response serves", async () => {
  await using srv = await serveFixture("shape_function.ts");
  const r = await exchange(srv.port, GET("/fn"));
  assert.equal(r.status, 200);
  assert.equal(r.body, "function /fn via http");
});

Deno.test("serve: a Hono app (resolved from node_modules) serves its routes", async () => {
  await using srv = await serveFixture("shape_hono.ts");
  const a = await exchange(srv.port, GET("/hello/ada"));
  assert.equal(a.status, 200);
  assert.equal(a.body, "hono says hello to ada");
  const body = '{"n":1}';
  const b = await exchange(
    srv.port,
    `POST /json HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${body.length}\r\n\r\n${body}`,
  );
  assert.equal(b.status, 201);
  assert.deepEqual(JSON.parse(b.body), { got: { n: 1 } });
  const c = await exchange(srv.port, GET("/missing"));
  assert.equal(c.status, 404, "Hono's own notFound answer");
});
