/**
 * Issue 16, item 7: each help text is its own. `apprun --help` and `apprun help` print the
 * command list (they used to print the whole serve help), `apprun version --help` the version
 * command's, `apprun help CMD` and `apprun CMD --help` that command's; `--help` after `--`
 * belongs to the app. Runs the real command line (bin/apprun).
 */
import assert from "node:assert/strict";
import { APPRUN } from "../_proc.ts";

async function run(...args: string[]): Promise<{ code: number; out: string }> {
  const out = await new Deno.Command(APPRUN, { args, stdin: "null" }).output();
  const dec = new TextDecoder();
  return { code: out.code, out: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

Deno.test("apprun --help, -h and help print the command list, not the serve help", async () => {
  for (const flag of ["--help", "-h", "help"]) {
    const r = await run(flag);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^apprun \d+\.\d+\.\d+: /);
    assert.match(r.out, /Commands:\n {2}serve APP/);
    assert.match(r.out, /\n {2}reload \[--name NAME\]/);
    assert.doesNotMatch(r.out, /Usage: apprun serve|--max-body/, `${flag} printed serve's help`);
  }
});

Deno.test("apprun version --help prints the version command's help only", async () => {
  const r = await run("version", "--help");
  assert.equal(r.code, 0);
  assert.match(r.out, /^Usage: apprun version\n/);
  assert.doesNotMatch(r.out, /serve|--port/);
});

Deno.test("apprun help CMD and apprun CMD --help print that command's help", async () => {
  for (const cmd of ["serve", "reload", "status", "check"]) {
    const [a, b] = [await run("help", cmd), await run(cmd, "--help")];
    assert.equal(a.code, 0, a.out);
    assert.match(a.out, new RegExp(`^Usage: apprun ${cmd}\\b`));
    assert.equal(a.out, b.out);
  }
  const r = await run("reload", "--help");
  assert.match(r.out, /--name NAME[^]*--control PATH/);
});

Deno.test("apprun with no command: the list and exit 2; an unknown one: one line, exit 2", async () => {
  const none = await run();
  assert.equal(none.code, 2);
  assert.match(none.out, /Commands:/);
  const bad = await run("nope");
  assert.equal(bad.code, 2);
  assert.equal(bad.out, `apprun: unknown command "nope" (try apprun help)\n`);
});
