/**
 * Issue 16, item 1: a handler that fails to load under plain `apprun serve` (its supervisor)
 * is said once and ends the command at once — exit 1 within 2 s, one worker started, no
 * on-failure restarts (it used to repeat the line 30 times over ~8.5 s until the start limit).
 * Every kind: a missing file, a throw at import, no default export, a missing import and a
 * syntax error (those two are Deno's own report, shown once). With `--log-level warn` the
 * whole output is the worker's report.
 */
import assert from "node:assert/strict";
import { APPRUN, spawn } from "../_proc.ts";
import { appDir } from "./_supervised.ts";

const KINDS: { name: string; source: string | null; problem: RegExp }[] = [
  { name: "a missing file", source: null, problem: /handler file not found: .*handler\.ts/ },
  {
    name: "a throw at import",
    source: "throw new Error('no database configured');\nexport default () => new Response();\n",
    problem: /apprun: handler .*handler\.ts failed to load: .*no database configured/,
  },
  {
    name: "no default export",
    source: "export const fetch = () => new Response('x');\n",
    problem: /apprun: handler .*handler\.ts has no default export and calls no Deno\.serve/,
  },
  {
    name: "a missing import",
    source: "import './not-there.ts';\nexport default () => new Response();\n",
    problem: /not-there\.ts/,
  },
  {
    name: "a syntax error",
    source: "export default {\n  fetch(req) { return new Response('x') \n};\nconst = ;\n",
    problem: /SyntaxError/,
  },
];

/** `apprun serve handler.ts` by hand (the supervisor); its code, output and time to exit. */
async function serveBroken(source: string | null, args: string[] = []) {
  await using dir = await appDir(source === null ? {} : { "handler.ts": source });
  const t0 = performance.now();
  const proc = spawn(APPRUN, ["serve", `${dir.path}/handler.ts`, "--port", "0", ...args], {
    env: dir.env,
  });
  const status = await proc.wait(30_000);
  return { code: status.code, log: proc.log, ms: performance.now() - t0 };
}

for (const { name, source, problem } of KINDS) {
  Deno.test(`serve (supervised): ${name} → said once, exit 1 within 2 s`, async () => {
    const r = await serveBroken(source);
    assert.equal(r.code, 1, r.log);
    assert.ok(r.ms < 2000, `exited after ${Math.round(r.ms)} ms:\n${r.log}`);
    const problemLines = r.log.split("\n").filter((l) => problem.test(l));
    assert.equal(problemLines.length, 1, `the problem once, got:\n${r.log}`);
    assert.doesNotMatch(r.log, /restarting in|start request repeated too quickly/);
    assert.ok((r.log.match(/: started /g) ?? []).length <= 1, "one worker at most");
    // Nothing at warn or error from the supervisor repeats what the worker said.
    assert.doesNotMatch(r.log, / (warn|error) +supervisor:/, r.log);
  });
}

Deno.test("serve (supervised): a throw at import with --log-level warn is one line", async () => {
  const r = await serveBroken(KINDS[1].source, ["--log-level", "warn"]);
  assert.equal(r.code, 1);
  const lines = r.log.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, r.log);
  assert.match(lines[0], KINDS[1].problem);
});

Deno.test("serve (supervised): a syntax error with --log-level warn is Deno's report, once", async () => {
  const r = await serveBroken(KINDS[4].source, ["--log-level", "warn"]);
  assert.equal(r.code, 1);
  assert.equal((r.log.match(/SyntaxError/g) ?? []).length, 1, r.log);
  assert.match(r.log, /handler\.ts:\d+:\d+/);
  assert.doesNotMatch(r.log, /supervisor/, r.log);
});
