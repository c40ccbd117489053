/**
 * The self-contained artifact (`apprun compile --format apprun`), proven offline with nothing
 * of this machine in reach: compiled with no network (`unshare --net`: deno compile cannot
 * get denort, so `auto` builds apprun's own format), moved to an empty directory elsewhere,
 * and run in a mount namespace where this checkout — its node_modules, its Deno — is hidden
 * under an empty tmpfs, with no network, an empty HOME and no DENO_DIR: it serves on a unix
 * socket, hands a keep-alive connection to a new worker on SIGHUP, and `version` reports its
 * build. Two first starts that race both serve from one unpacked tree; a damaged artifact is
 * refused before anything runs; old trees are cleaned up. Prints the measured sizes and
 * start times.
 */
import assert from "node:assert/strict";
import { APPRUN, spawn } from "../_proc.ts";
import { sleep } from "../_poll.ts";
import { sha256Of } from "../../runtime/upgrade/mod.ts";
import { BUILD_CACHE, UPGRADE_FIXTURES } from "./_util.ts";
import { confinedArgs, confinedCommand, requestOverUnix, whyNoConfinement } from "./_artifact.ts";

const V1 = `${UPGRADE_FIXTURES}/v1.ts`;
const noConfinement = whyNoConfinement();
if (noConfinement) console.log(`artifact confinement tests skipped: ${noConfinement}`);

/** A scratch dir outside the checkout (the checkout is what the confined run must not see). */
async function scratch(): Promise<{ dir: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "apprun-artifact-test-" });
  return {
    dir,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }).catch(() => {}),
  };
}

/** `apprun compile` with no network at all; returns the output and what it printed. */
async function compileOffline(handler: string, output: string, name = "app") {
  const t0 = performance.now();
  const out = await new Deno.Command("unshare", {
    args: ["--net", "--", APPRUN, "compile", handler, "-o", output, "--name", name],
    env: { APPRUN_CACHE_DIR: BUILD_CACHE },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  const text = dec.decode(out.stdout) + dec.decode(out.stderr);
  assert.equal(out.code, 0, text);
  return { text, ms: performance.now() - t0 };
}

Deno.test({
  name:
    "artifact: compiled offline, moved away, run with no checkout, network or cache: serves, hands off, version",
  ignore: noConfinement !== null,
  async fn() {
    await using s = await scratch();
    const built = await compileOffline(V1, `${s.dir}/build/app`);
    assert.match(built.text, /deno compile cannot get its runtime: .*building apprun's own/);
    assert.match(built.text, /compiled .* \(apprun format, [\d.]+ MiB\)/);
    const bin = `${s.dir}/elsewhere/bin/app`;
    await Deno.mkdir(`${s.dir}/elsewhere/bin`, { recursive: true });
    await Deno.rename(`${s.dir}/build/app`, bin);
    await Deno.remove(`${s.dir}/build`, { recursive: true });
    const size = Deno.statSync(bin).size;
    const home = `${s.dir}/home`;
    await Deno.mkdir(`${home}/run`, { recursive: true, mode: 0o700 });
    const env = { HOME: home, XDG_RUNTIME_DIR: `${home}/run`, PATH: "/usr/bin:/bin" };

    const version = await confinedCommand([bin, "version"], env).output();
    const expected = `app v1.ts sha256:${(await sha256Of(V1)).slice(0, 12)} (apprun 0.1.0)`;
    assert.equal(new TextDecoder().decode(version.stdout).trim(), expected);

    const sock = `${s.dir}/app.sock`;
    const t0 = performance.now();
    const sup = spawn("unshare", confinedArgs([bin, "serve", "--unix", sock]), {
      env,
      clearEnv: true,
    });
    try {
      await sup.waitFor(/generation 1 ready/, 60_000);
      const firstStart = performance.now() - t0;
      const conn = await Deno.connect({ transport: "unix", path: sock });
      try {
        const [id1, pid1] = (await requestOverUnix(conn, "/r?id=one")).split(" ");
        assert.equal(id1, "one");
        assert.ok(Number(pid1) > 0);
        const tRestart = performance.now();
        Deno.kill(sup.pid, "SIGHUP");
        await sup.waitFor(/generation 2 ready/, 60_000);
        const restart = performance.now() - tRestart;
        const [id2, pid2] = (await requestOverUnix(conn, "/r?id=two")).split(" ");
        assert.equal(id2, "two");
        assert.notEqual(pid2, pid1, "the same connection, answered by the new worker");
        console.log(
          `  artifact ${(size / (1 << 20)).toFixed(1)} MiB (compiled offline in ${
            (built.ms / 1000).toFixed(1)
          } s); first start (unpack + check + serve) ${
            Math.round(firstStart)
          } ms; restart with the tree unpacked ${Math.round(restart)} ms`,
        );
      } finally {
        conn.close();
      }
      assert.deepEqual(
        [...Deno.readDirSync(`${home}/.cache/apprun/unpacked`)].map((e) => e.name).sort().length,
        2,
        "one tree and Deno's cache",
      );
    } finally {
      sup.kill("SIGTERM");
      await sup.wait();
    }
  },
});

Deno.test({
  name: "artifact: two first starts that race both serve, from one unpacked tree",
  ignore: noConfinement !== null,
  async fn() {
    await using s = await scratch();
    const bin = `${s.dir}/app`;
    await compileOffline(V1, bin);
    const home = `${s.dir}/home`;
    await Deno.mkdir(home);
    const env = { HOME: home, PATH: "/usr/bin:/bin" };
    const procs = [1, 2].map((i) =>
      spawn(
        "unshare",
        confinedArgs([bin, "serve", "--no-supervisor", "--unix", `${s.dir}/${i}.sock`]),
        {
          env,
          clearEnv: true,
        },
      )
    );
    try {
      await Promise.all(procs.map((p) => p.waitFor(/listening on/, 60_000)));
      for (const i of [1, 2]) {
        const conn = await Deno.connect({ transport: "unix", path: `${s.dir}/${i}.sock` });
        try {
          assert.match(await requestOverUnix(conn, `/r?id=${i}`), new RegExp(`^${i} \\d+$`));
        } finally {
          conn.close();
        }
      }
      const base = `${home}/.cache/apprun/unpacked`;
      const names = [...Deno.readDirSync(base)].map((e) => e.name);
      assert.deepEqual(names.filter((n) => /^[0-9a-f]{64}$/.test(n)).length, 1, names.join(" "));
      assert.deepEqual(names.filter((n) => n.startsWith(".")), [], "no temp dir left");
    } finally {
      for (const p of procs) {
        p.kill("SIGTERM");
        await p.wait();
      }
    }
  },
});

Deno.test("artifact: a damaged payload is refused before anything runs; a damaged tree is unpacked again", async () => {
  await using s = await scratch();
  const bin = `${s.dir}/app`;
  const out = await new Deno.Command(APPRUN, {
    args: ["compile", V1, "-o", bin, "--format", "apprun"],
    env: { APPRUN_CACHE_DIR: BUILD_CACHE },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const env = { HOME: `${s.dir}/home`, PATH: "/usr/bin:/bin" };
  const run = async (file: string) => {
    const o = await new Deno.Command(file, {
      args: ["check"],
      env,
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const dec = new TextDecoder();
    return { code: o.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
  };
  // One byte of the tree member flipped, near the end (the app's files, not Deno's).
  const bytes = await Deno.readFile(bin);
  const damaged = `${s.dir}/damaged`;
  bytes[bytes.length - 4096] ^= 0xff;
  await Deno.writeFile(damaged, bytes, { mode: 0o755 });
  const bad = await run(damaged);
  assert.equal(bad.code, 1, bad.out);
  assert.match(
    bad.err,
    /^app: (cannot unpack .*: tar: .*|.* is damaged: its unpacked files do not match .*)\n$/,
  );
  const base = `${env.HOME}/.cache/apprun/unpacked`;
  const left = () => [...Deno.readDirSync(base)].map((e) => e.name).filter((n) => n !== "deno");
  assert.deepEqual(left(), [], "nothing unpacked is left");
  // A payload that unpacks cleanly, with one file changed: the hashes refuse it.
  const tampered = await tamper(bin, `${s.dir}/tampered`, "mod.ts");
  const refused = await run(tampered);
  assert.equal(refused.code, 1, refused.out);
  assert.match(
    refused.err,
    /^app: .*\/tampered is damaged: its unpacked files do not match their hashes \(mod\.ts: FAILED\)\n$/,
  );
  assert.deepEqual(left(), [], "nothing unpacked is left");

  const good = await run(bin);
  assert.equal(good.code, 0, good.err);
  assert.match(good.out, /^ok: .*v1\.ts \(1 server\)\n$/);
  const [tree] = left();
  // A file of the tree lost (a cache cleaner), and its mark: the next start unpacks again.
  await Deno.remove(`${base}/${tree}/mod.ts`);
  await Deno.remove(`${base}/${tree}/.apprun/ok`);
  const again = await run(bin);
  assert.equal(again.code, 0, again.err);
  assert.ok(Deno.statSync(`${base}/${tree}/mod.ts`).isFile, "unpacked again");
});

Deno.test("artifact: trees not used lately are removed (four stay), and what dead unpacks left", async () => {
  await using s = await scratch();
  const env = { HOME: `${s.dir}/home`, PATH: "/usr/bin:/bin" };
  // An unpack in progress (its process lives; its files carry old times) and one that died.
  const base = `${env.HOME}/.cache/apprun/unpacked`;
  const deadPid = new Deno.Command("sh", { args: ["-c", "echo $$"], stdout: "piped" })
    .outputSync();
  const inProgress = `${base}/.unpack-${Deno.pid}-aaaaaaaa`;
  const left = `${base}/.unpack-${new TextDecoder().decode(deadPid.stdout).trim()}-bbbbbbbb`;
  for (const d of [inProgress, left]) {
    await Deno.mkdir(`${d}/node_modules`, { recursive: true });
    await Deno.utime(d, 0, 0);
  }
  const fixtures = ["v1.ts", "v2.ts", "crash.ts", "unhealthy.ts", "slow_start.ts"];
  for (const f of fixtures) {
    const bin = `${s.dir}/${f}.app`;
    const r = await new Deno.Command(APPRUN, {
      args: ["compile", `${UPGRADE_FIXTURES}/${f}`, "-o", bin, "--format", "apprun"],
      env: { APPRUN_CACHE_DIR: BUILD_CACHE },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    const c = await new Deno.Command(bin, { args: ["check"], env, clearEnv: true }).output();
    assert.equal(c.code, 0, f);
    await sleep(1100); // distinct mtimes for `ls -t`
  }
  const trees = [...Deno.readDirSync(base)].map((e) => e.name).filter((n) =>
    /^[0-9a-f]{64}$/.test(n)
  );
  assert.equal(trees.length, 4, trees.join(" "));
  assert.ok(Deno.statSync(`${inProgress}/node_modules`).isDirectory, "a live unpack is left alone");
  assert.throws(() => Deno.statSync(left), "a dead one's leftovers go");
});

/** A copy of artifact `bin` whose payload has `file` changed (re-packed, so it unpacks fine). */
async function tamper(bin: string, out: string, file: string): Promise<string> {
  const bytes = await Deno.readFile(bin);
  const text = new TextDecoder().decode(bytes.subarray(0, 8192));
  const offset = Number(/payload_offset=(\d+)/.exec(text)![1]);
  const length = Number(/payload_length=(\d+)/.exec(text)![1]);
  const work = `${out}.d`;
  await Deno.mkdir(work, { recursive: true });
  await Deno.writeFile(`${work}/payload.gz`, bytes.subarray(offset - 1, offset - 1 + length));
  const sh = (cmd: string) => new Deno.Command("sh", { args: ["-c", cmd], cwd: work }).outputSync();
  assert.equal(sh("mkdir t && gzip -dc payload.gz | tar -x -i -f - -C t").code, 0);
  await Deno.writeTextFile(`${work}/t/${file}`, "// changed\n", { append: true });
  assert.equal(sh("tar -c -C t . | gzip -n > new.gz").code, 0);
  const payload = await Deno.readFile(`${work}/new.gz`);
  const header = new TextDecoder().decode(bytes.subarray(0, offset - 1))
    .replace(/payload_length=\d+/, `payload_length=${String(payload.length).padStart(12, "0")}`);
  const trailer = bytes.subarray(offset - 1 + length);
  const head = new TextEncoder().encode(header);
  const whole = new Uint8Array(head.length + payload.length + trailer.length);
  whole.set(head);
  whole.set(payload, head.length);
  whole.set(trailer, head.length + payload.length);
  await Deno.writeFile(out, whole, { mode: 0o755 });
  await Deno.remove(work, { recursive: true });
  return out;
}
