/**
 * `apprun compile` and `apprun check`. Offline, `deno compile` cannot download denort: the
 * command then fails with one line saying so (and names DENORT_BIN), and the tests that need
 * a real binary are skipped with that reason printed. What does not need denort is proven
 * anyway: the generated entry module, run by `deno run`, is apprun with the handler built in
 * (`check`, `version`, `serve`); a DENORT_BIN that is the deno CLI is caught by the check of
 * the output.
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
    const r = await apprun(["compile", V1, "-o", `${out}/probe`], {});
    return r.code === 0 ? null : r.stderr.trim();
  } finally {
    await Deno.remove(out, { recursive: true });
  }
}
const noCompile = await probe();
if (noCompile !== null) console.log(`compiled-binary tests skipped: ${noCompile}`);

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
  name: "apprun compile without denort: one clear line naming DENORT_BIN",
  ignore: noCompile === null,
  async fn() {
    assert.match(noCompile!, /^apprun: deno compile cannot get its runtime: it downloads denort/);
    assert.match(noCompile!, /set DENORT_BIN to a local denort of Deno \d+\.\d+\.\d+$/);
    assert.equal(noCompile!.split("\n").length, 1);
    await using h = await privateHome();
    const gone = await apprun(["compile", V1, "-o", `${h.home}/x`], { DENORT_BIN: "/no/denort" });
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
  const r = await apprun(["compile", V1, "-o", out], { DENORT_BIN: Deno.realPathSync(DENO) });
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

Deno.test({
  name: "a compiled binary: version, check, serve under its own supervisor, install, upgrade",
  ignore: noCompile !== null,
  async fn() {
    await using h = await privateHome();
    const v1 = `${h.home}/app-v1`;
    const v2 = `${h.home}/app-v2`;
    for (const [src, out] of [[V1, v1], [`${UPGRADE_FIXTURES}/v2.ts`, v2]]) {
      const r = await apprun(["compile", src, "-o", out], {});
      assert.equal(r.code, 0, r.stderr);
    }
    const run = async (bin: string, args: string[]) => {
      const o = await new Deno.Command(bin, { args, env: h.env, stdout: "piped", stderr: "piped" })
        .output();
      return { code: o.code, out: new TextDecoder().decode(o.stdout) };
    };
    assert.match((await run(v1, ["version"])).out, /^app-v1 v1\.ts sha256:/);
    assert.match((await run(v1, ["check"])).out, /^ok: .*v1\.ts \(1 server\)\n$/);
    const port = freePort();
    const inst = await run(v1, ["install", "--name", "app", "--port", String(port), "--user"]);
    assert.equal(inst.code, 0);
    const bin = `${h.home}/.local/lib/apprun/app/app`;
    const sup = spawn(bin, [
      "serve",
      "--bin",
      bin,
      "--name",
      "app",
      "--port",
      String(port),
      "--host",
      "127.0.0.1",
    ], { env: h.env });
    try {
      await sup.waitFor(/generation 1 ready/);
      assert.equal(await versionOf(port), "v1");
      const up = await run(v1, ["upgrade", v2, "--name", "app", "--user"]);
      assert.equal(up.code, 0, up.out);
      assert.equal(await versionOf(port), "v2");
    } finally {
      sup.kill("SIGTERM");
      await sup.wait();
    }
  },
});
