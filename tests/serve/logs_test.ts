/**
 * The log of a real `apprun serve` on stderr: with JOURNAL_STREAM set (as systemd sets it
 * when stderr is the journal), every line starts with its syslog priority `<N>`
 * (sd-daemon(3)) — 6 for info, 3 for errors; without it, every line carries an ISO-8601
 * timestamp and the level name.
 */
import assert from "node:assert/strict";
import { APPRUN, serveFixture, spawn, tempDir } from "../_proc.ts";
import { exchange, GET } from "../_net.ts";

/** Serves echo.ts, answers `/` and `/throw` (an error log), stops; returns the stderr lines. */
async function runAndStop(env: Record<string, string>, logLevel = "info"): Promise<string[]> {
  // A clean environment: the runner's own JOURNAL_STREAM (under systemd) must not leak in.
  const base: Record<string, string> = {};
  for (const k of ["PATH", "HOME", "DENO_DIR", "TMPDIR"]) {
    const v = Deno.env.get(k);
    if (v !== undefined) base[k] = v;
  }
  await using srv = await serveFixture("echo.ts", [], {
    env: { ...base, APPRUN_LOG: logLevel, ...env },
    clearEnv: true,
  });
  assert.equal((await exchange(srv.port, GET("/"))).status, 200);
  assert.equal((await exchange(srv.port, GET("/throw"))).status, 500);
  srv.proc.kill("SIGTERM");
  assert.equal((await srv.proc.wait()).code, 0);
  return srv.proc.log.split("\n").filter((l) => l !== "");
}

Deno.test("logs: with JOURNAL_STREAM every line has a <priority> prefix", async () => {
  const lines = await runAndStop({ JOURNAL_STREAM: "1:2" });
  for (const l of lines) assert.match(l, /^<[0-7]>/, `no priority prefix: ${JSON.stringify(l)}`);
  assert.ok(lines.some((l) => /^<6>listening on http:\/\/127\.0\.0\.1:\d+ \(http\)$/.test(l)));
  assert.ok(lines.some((l) => /^<3>handler failed for GET \/throw: handler exploded$/.test(l)));
  assert.ok(lines.some((l) => l === "<6>stopped"));
  assert.ok(!lines.some((l) => /^\d{4}-/.test(l.slice(3))), "no timestamp: the journal adds one");
});

Deno.test({
  name: "logs: with JOURNAL_STREAM a multi-line message keeps its priority on every line",
  // Regression test for a fixed bug: runtime/log.ts indents continuation lines ("\n  ") after one `<N>` prefix; the journal
  // stores each stderr line as its own entry, so the stack trace logged at debug after a
  // handler failure lands as a run of priority-6 (info) entries without a prefix.
  fn: async () => {
    const lines = await runAndStop({ JOURNAL_STREAM: "1:2" }, "debug");
    // The stack trace logged at debug after /throw: one message, many lines, each its own entry.
    const trace = lines.findIndex((l) => l === "<7>Error: handler exploded");
    assert.ok(trace >= 0, `no stack trace at debug:\n${lines.join("\n")}`);
    assert.match(lines[trace + 1], /^<7> {4}at /, "the trace's next line has its own prefix");
    for (const l of lines) assert.match(l, /^<[0-7]>/, `no priority prefix: ${JSON.stringify(l)}`);
  },
});

Deno.test({
  name: "logs: with JOURNAL_STREAM a fatal start-up error is logged at <3>",
  // Regression test for a fixed bug: cli/main.ts prints fatal errors with console.error(`apprun: …`), bypassing the logger:
  // under systemd a handler that fails to load is journaled at info level, not as an error.
  fn: async () => {
    await using dir = await tempDir();
    const proc = spawn(APPRUN, [
      "serve",
      `${dir.path}/missing.ts`,
      "--no-supervisor",
      "--port",
      "0",
    ], {
      env: { JOURNAL_STREAM: "1:2" },
    });
    assert.equal((await proc.wait()).code, 1);
    const lines = proc.log.split("\n").filter((l) => l !== "");
    assert.equal(lines.length, 1, proc.log);
    assert.match(lines[0], /^<3>.*handler file not found: /);
  },
});

Deno.test("logs: without JOURNAL_STREAM lines carry an ISO timestamp and the level", async () => {
  const lines = await runAndStop({});
  const re = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z) (error|warn |info |debug) (.*)$/;
  for (const l of lines) {
    const m = re.exec(l);
    assert.ok(m, `not a timestamped log line: ${JSON.stringify(l)}`);
    assert.ok(Math.abs(Date.parse(m[1]) - Date.now()) < 60_000, `timestamp ${m[1]} is not now`);
  }
  assert.ok(lines.some((l) => / info {2}listening on http:\/\/127\.0\.0\.1:\d+ \(http\)$/.test(l)));
  assert.ok(lines.some((l) => / error handler failed for GET \/throw: handler exploded$/.test(l)));
  assert.ok(!lines.some((l) => /^<\d>/.test(l)));
});
