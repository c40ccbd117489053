/**
 * @module
 * systemd's own checks on the rendered units: `systemd-analyze verify` must print nothing
 * for every case (system ones as system units, user ones with `--user`), and
 * `systemd-analyze security --offline=yes` must rate each system service at 2.0 or better.
 * The scores are printed, so CI logs show them.
 */
import assert from "node:assert/strict";
import { run } from "../_systemd.ts";
import { renderUnits } from "../../units/mod.ts";
import { cases } from "./_cases.ts";
import { DENO } from "./_util.ts";

const MAX_EXPOSURE = 2.0;

function missingTool(): string | null {
  if (Deno.build.os !== "linux") return "systemd-analyze needs Linux";
  try {
    Deno.statSync("/usr/bin/systemd-analyze");
    return null;
  } catch {
    return "/usr/bin/systemd-analyze is not installed";
  }
}
const reason = missingTool();
if (reason !== null) console.log(`units verify tests skipped: ${reason}`);

/** Writes the case's units into a fresh temp dir; returns the dir and the file paths. */
async function writeCase(name: string): Promise<{ dir: string; files: string[] }> {
  const opts = cases(DENO)[name];
  const dir = await Deno.makeTempDir({ prefix: `apprun-units-${name}-` });
  const files: string[] = [];
  for (const unit of renderUnits(opts)) {
    const path = `${dir}/${unit.file}`;
    await Deno.writeTextFile(path, unit.text);
    files.push(path);
  }
  return { dir, files };
}

for (const name of Object.keys(cases(DENO))) {
  const isUser = cases(DENO)[name].scope === "user";
  Deno.test({
    name: `systemd-analyze${isUser ? " --user" : ""} verify passes "${name}" silently`,
    ignore: reason !== null,
    async fn() {
      const { dir, files } = await writeCase(name);
      try {
        // A user-mode analyzer wants a runtime dir; give it an empty one.
        const env: Record<string, string> = isUser ? { XDG_RUNTIME_DIR: dir } : {};
        const args = [...(isUser ? ["--user"] : []), "verify", ...files];
        const r = await run("systemd-analyze", args, env);
        assert.equal(r.stdout + r.stderr, "", `verify printed:\n${r.stdout}${r.stderr}`);
        assert.equal(r.code, 0);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
  if (isUser) continue;
  Deno.test({
    name: `systemd-analyze security rates the "${name}" service ≤ ${MAX_EXPOSURE.toFixed(1)}`,
    ignore: reason !== null,
    async fn() {
      const { dir, files } = await writeCase(name);
      try {
        const service = files.find((f) => f.endsWith(".service"))!;
        const r = await run("systemd-analyze", ["security", "--offline=yes", service], {
          SYSTEMD_COLORS: "0",
        });
        const m = /Overall exposure level for \S+: (\d+\.\d+) (\S+)/.exec(r.stdout);
        assert.ok(m, `no score in:\n${r.stdout}${r.stderr}`);
        const score = Number(m[1]);
        console.log(`exposure score of ${name}.service: ${score} ${m[2]}`);
        assert.ok(score <= MAX_EXPOSURE, `${name}.service exposure ${score} > ${MAX_EXPOSURE}`);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name: "systemd-analyze verify is not silent about a broken unit (the check can fail)",
  ignore: reason !== null,
  async fn() {
    const { dir, files } = await writeCase("hello");
    try {
      const service = files.find((f) => f.endsWith(".service"))!;
      const text = await Deno.readTextFile(service);
      await Deno.writeTextFile(service, text.replace(DENO, `${dir}/no-such-binary`));
      const r = await run("systemd-analyze", ["verify", ...files]);
      assert.notEqual(r.stdout + r.stderr, "");
      assert.match(r.stdout + r.stderr, /no-such-binary/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
