/**
 * @module
 * systemd's own checks on the rendered units: `systemd-analyze verify` must print nothing
 * for every case (system ones as system units, user ones with `--user`), and
 * `systemd-analyze security --offline=yes` must rate each system service at 2.0 or better.
 * The scores are printed, so CI logs show them.
 */
import assert from "node:assert/strict";
import { DENO, run, tempDir, which } from "../_proc.ts";
import { renderUnits } from "../../units/mod.ts";
import { cases } from "./_cases.ts";

const MAX_EXPOSURE = 2.0;

const reason = which("systemd-analyze") ? null : "systemd-analyze is not installed (systemd)";
if (reason !== null) console.log(`skip: units verify tests: ${reason}`);

/** Writes the case's units into a temp dir (removed at the end of the scope). */
async function writeCase(
  name: string,
): Promise<{ dir: string; files: string[] } & AsyncDisposable> {
  const tmp = await tempDir({ prefix: `apprun-units-${name}-` });
  const files: string[] = [];
  for (const unit of renderUnits(cases(DENO)[name])) {
    files.push(`${tmp.path}/${unit.file}`);
    await Deno.writeTextFile(files.at(-1)!, unit.text);
  }
  return { dir: tmp.path, files, [Symbol.asyncDispose]: tmp[Symbol.asyncDispose] };
}

for (const name of Object.keys(cases(DENO))) {
  const isUser = cases(DENO)[name].scope === "user";
  Deno.test({
    name: `systemd-analyze${isUser ? " --user" : ""} verify passes "${name}" silently`,
    ignore: reason !== null,
    async fn() {
      await using unit = await writeCase(name);
      // A user-mode analyzer wants a runtime dir; give it an empty one.
      const env: Record<string, string> = isUser ? { XDG_RUNTIME_DIR: unit.dir } : {};
      const args = [...(isUser ? ["--user"] : []), "verify", ...unit.files];
      const r = await run("systemd-analyze", args, { env });
      assert.equal(r.stdout + r.stderr, "", `verify printed:\n${r.stdout}${r.stderr}`);
      assert.equal(r.code, 0);
    },
  });
  if (isUser) continue;
  Deno.test({
    name: `systemd-analyze security rates the "${name}" service ≤ ${MAX_EXPOSURE.toFixed(1)}`,
    ignore: reason !== null,
    async fn() {
      await using unit = await writeCase(name);
      const service = unit.files.find((f) => f.endsWith(".service"))!;
      const r = await run("systemd-analyze", ["security", "--offline=yes", service], {
        env: { SYSTEMD_COLORS: "0" },
      });
      const m = /Overall exposure level for \S+: (\d+\.\d+) (\S+)/.exec(r.stdout);
      assert.ok(m, `no score in:\n${r.stdout}${r.stderr}`);
      const score = Number(m[1]);
      console.log(`exposure score of ${name}.service: ${score} ${m[2]}`);
      assert.ok(score <= MAX_EXPOSURE, `${name}.service exposure ${score} > ${MAX_EXPOSURE}`);
    },
  });
}

Deno.test({
  name: "systemd-analyze verify is not silent about a broken unit (the check can fail)",
  ignore: reason !== null,
  async fn() {
    await using unit = await writeCase("hello");
    const service = unit.files.find((f) => f.endsWith(".service"))!;
    const text = await Deno.readTextFile(service);
    await Deno.writeTextFile(service, text.replace(DENO, `${unit.dir}/no-such-binary`));
    const r = await run("systemd-analyze", ["verify", ...unit.files]);
    assert.notEqual(r.stdout + r.stderr, "");
    assert.match(r.stdout + r.stderr, /no-such-binary/);
  },
});
