/**
 * `apprun compile` and `apprun check`. Both forms of a compiled app have every apprun command
 * with the handler built in: apprun's own format is proven everywhere (artifact_test.ts
 * proves it offline, with nothing of this machine in reach); `deno compile`'s needs denort,
 * which offline it cannot download: `--format deno` then fails with one line saying so (and
 * names DENORT_BIN), and its binary tests are skipped with that reason printed. What does not
 * need denort is proven anyway: the generated entry module, run by `deno run`, is apprun with
 * the handler built in (`check`, `version`, `serve`); a DENORT_BIN that is the deno CLI is
 * caught by the check of the output.
 */
import assert from "node:assert/strict";
import { DENO, ROOT, spawn } from "../_proc.ts";
import { renderEntry, sha256Of } from "../../runtime/upgrade/mod.ts";
import { freePort } from "../_net.ts";
import { apprun, privateHome, UPGRADE_FIXTURES, versionOf } from "./_util.ts";

const V1 = `${UPGRADE_FIXTURES}/v1.ts`;

/** Compiles once up front: why a real compile is impossible here, or null. */
async function probe(): Promise<string | null> {
  const out = await Deno.makeTempDir({ prefix: "apprun-compile-probe-" });
  try {
    const r = await apprun(["compile", V1, "-o", `${out}/probe`, "--format", "deno"], {});
    return r.code === 0 ? null : r.stderr.trim();
  } finally {
    await Deno.remove(out, { recursive: true });
  }
}
const noCompile = await probe();
if (noCompile !== null) console.log(`deno compile binary tests skipped: ${noCompile}`);

Deno.test("apprun check: ok for a good handler; one line and exit 1 for a bad one", async () => {
  const ok = await apprun(["check", V1], {});
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, `ok: ${V1} (1 server)\n`);
  const missing = await apprun(["check", `${ROOT}/nope.ts`], {});
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, `apprun: handler file not found: ${ROOT}/nope.ts\n`);
  const two = await apprun(["check", V1, V1], {});
  assert.equal(two.code, 2);
});

Deno.test({
  name: "apprun compile --format deno without denort: one clear line naming DENORT_BIN",
  ignore: noCompile === null,
  async fn() {
    assert.match(noCompile!, /^apprun: deno compile cannot get its runtime: it downloads denort/);
    assert.match(noCompile!, /set DENORT_BIN to a local denort of Deno \d+\.\d+\.\d+$/);
    assert.equal(noCompile!.split("\n").length, 1);
    await using h = await privateHome();
    const gone = await apprun(["compile", V1, "-o", `${h.home}/x`, "--format", "deno"], {
      DENORT_BIN: "/no/denort",
    });
    assert.equal(gone.code, 1);
    assert.equal(
      gone.stderr,
      "apprun: DENORT_BIN=/no/denort: no such file (it must be a denort binary)\n",
    );
    const usage = await apprun(["compile", V1], {});
    assert.equal(usage.code, 2);
    assert.equal(usage.stderr, "apprun: compile needs -o NAME (the executable to write)\n");
  },
});

Deno.test("apprun compile: a DENORT_BIN that is the deno CLI is caught by running the output", async () => {
  await using h = await privateHome();
  const out = `${h.home}/app`;
  const r = await apprun(["compile", V1, "-o", out, "--format", "deno"], {
    DENORT_BIN: Deno.realPathSync(DENO),
  });
  assert.equal(r.code, 1, r.stdout);
  assert.match(
    r.stderr,
    /^apprun: the compiled binary does not run apprun .*: is DENORT_BIN=.* a denort of Deno/,
  );
  await assert.rejects(Deno.stat(out), "the useless output is removed");
});

Deno.test("compile's entry module is apprun with the handler built in: check, version, serve", async () => {
  await using h = await privateHome();
  const entry = `${h.home}/hello.ts`;
  const sha256 = await sha256Of(V1);
  await Deno.writeTextFile(
    entry,
    renderEntry({ handler: V1, name: "hello", sha256, builtAt: "now" }),
  );
  const run = (args: string[]) =>
    new Deno.Command(DENO, {
      args: ["run", "-A", "--quiet", "--config", `${ROOT}/deno.json`, entry, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
  const dec = new TextDecoder();
  const check = await run(["check"]);
  assert.equal(dec.decode(check.stdout), `ok: ${V1} (1 server)\n`, dec.decode(check.stderr));
  const version = await run(["version"]);
  assert.equal(
    dec.decode(version.stdout),
    `hello v1.ts sha256:${sha256.slice(0, 12)} (apprun 0.1.0)\n`,
  );
  const port = freePort();
  const proc = spawn(DENO, [
    "run",
    "-A",
    "--quiet",
    "--config",
    `${ROOT}/deno.json`,
    entry,
    "serve",
    "--no-supervisor",
    "--port",
    String(port),
    "--host",
    "127.0.0.1",
  ]);
  try {
    await proc.waitFor(/listening on/);
    assert.equal(
      await versionOf(port),
      "v1",
      "serve with no handler argument serves the built-in one",
    );
  } finally {
    proc.kill("SIGTERM");
    await proc.wait();
  }
});

for (const format of ["apprun", "deno"]) {
  Deno.test({
    name:
      `compile --format ${format}: version, check, serve under its own supervisor, install, upgrade`,
    ignore: format === "deno" && noCompile !== null,
    async fn() {
      await using h = await privateHome();
      const v1 = `${h.home}/app-v1`;
      const v2 = `${h.home}/app-v2`;
      for (const [src, out] of [[V1, v1], [`${UPGRADE_FIXTURES}/v2.ts`, v2]]) {
        const r = await apprun(["compile", src, "-o", out, "--format", format], h.env);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`compiled .* \\(${format} format, [\\d.]+ MiB\\) in `));
      }
      const run = async (bin: string, args: string[]) => {
        const o = await new Deno.Command(bin, {
          args,
          env: h.env,
          stdout: "piped",
          stderr: "piped",
        })
          .output();
        const dec = new TextDecoder();
        return { code: o.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
      };
      const sha = (await sha256Of(V1)).slice(0, 12);
      assert.equal((await run(v1, ["version"])).out, `app-v1 v1.ts sha256:${sha} (apprun 0.1.0)\n`);
      assert.match((await run(v1, ["check"])).out, /^ok: .*v1\.ts \(1 server\)\n$/);
      const port = freePort();
      const inst = await run(v1, ["install", "--port", String(port), "--user"]);
      assert.equal(inst.code, 0, inst.err);
      const bin = `${h.home}/.local/lib/apprun/app-v1/app-v1`;
      assert.match(inst.out, new RegExp(`wrote ${bin}\n`), "installs itself, under its own name");
      const sup = spawn(bin, ["serve", "--port", String(port), "--host", "127.0.0.1"], {
        env: h.env,
      });
      try {
        await sup.waitFor(/generation 1 ready/, 60_000);
        assert.equal(await versionOf(port), "v1");
        const up = await run(v1, ["upgrade", v2, "--user"]);
        assert.equal(up.code, 0, up.out + up.err);
        assert.equal(await versionOf(port), "v2");
      } finally {
        sup.kill("SIGTERM");
        await sup.wait();
      }
    },
  });
}
