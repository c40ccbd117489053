/**
 * `apprun install` without a service manager: a packager's staging tree (--root) with the
 * exact files, modes and unit texts `renderUnits` gives, BIN an artifact that needs nothing
 * of this checkout; --dry-run writes nothing; a unit file apprun did not write is never
 * overwritten without --force; relative paths are taken from the working directory; every
 * bad option is one line naming it, exit 2 (usage) or 1.
 */
import assert from "node:assert/strict";
import { ROOT } from "../_proc.ts";
import { renderUnits } from "../../units/mod.ts";
import { sha256Of } from "../../runtime/upgrade/mod.ts";
import { apprun, privateHome, UPGRADE_FIXTURES, versionLine } from "../upgrade/_util.ts";

const HANDLER = `${UPGRADE_FIXTURES}/v1.ts`;

/** Every file below `dir`, relative, with its mode. */
function tree(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(`${dir}${prefix}`)) {
    const rel = `${prefix}/${e.name}`;
    if (e.isDirectory) out.push(...tree(dir, rel));
    else out.push(`${rel} ${(Deno.statSync(`${dir}${rel}`).mode! & 0o777).toString(8)}`);
  }
  return out.sort();
}

Deno.test("install --root: a staging tree with BIN, manifest and the units renderUnits gives", async () => {
  await using h = await privateHome();
  const root = `${h.home}/stage`;
  const r = await apprun(
    [
      "install",
      HANDLER,
      "--name",
      "hello",
      "--listen",
      "8080",
      "--listen",
      "admin=/run/hello.sock",
      "--root",
      root,
      "--drain-timeout",
      "5s",
      "--env",
      "GREETING=hi there",
      "--watchdog",
      "10s",
      "--health",
      "http://127.0.0.1:8080/health",
    ],
    h.env,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /systemctl|ran /, "--root runs nothing");
  assert.deepEqual(tree(root), [
    "/usr/lib/apprun/hello/apprun.json 644",
    "/usr/lib/apprun/hello/hello 755",
    "/usr/lib/systemd/system/hello-admin.socket 644",
    "/usr/lib/systemd/system/hello.service 644",
    "/usr/lib/systemd/system/hello.socket 644",
  ]);
  const units = renderUnits({
    name: "hello",
    scope: "system",
    listeners: [{ kind: "tcp", port: 8080 }, {
      kind: "unix",
      path: "/run/hello.sock",
      name: "admin",
    }],
    execStart: ["/usr/lib/apprun/hello/hello", "serve", "--drain-timeout", "5s"],
    drainTimeout: 5,
    environment: { GREETING: "hi there" },
    environmentFiles: [],
    watchdog: 10,
    // Nothing of the checkout is named: the artifact carries the handler (even from /tmp).
    bindReadOnlyPaths: [],
  });
  assert.deepEqual(units.map((u) => u.file), [
    "hello.socket",
    "hello-admin.socket",
    "hello.service",
  ]);
  for (const u of units) {
    assert.equal(
      await Deno.readTextFile(`${root}/usr/lib/systemd/system/${u.file}`),
      u.text,
      u.file,
    );
  }
  assert.equal(
    await versionLine(`${root}/usr/lib/apprun/hello/hello`),
    `hello v1.ts sha256:${(await sha256Of(HANDLER)).slice(0, 12)} (apprun 0.1.0)`,
    "BIN is an artifact of the handler",
  );
  const head = (await Deno.readFile(`${root}/usr/lib/apprun/hello/hello`)).subarray(0, 4096);
  assert.doesNotMatch(new TextDecoder().decode(head), new RegExp(ROOT), "names no checkout path");
  const manifest = JSON.parse(await Deno.readTextFile(`${root}/usr/lib/apprun/hello/apprun.json`));
  assert.equal(manifest.format, 1);
  assert.equal(manifest.bin, "/usr/lib/apprun/hello/hello");
  assert.equal(manifest.kind, "artifact");
  assert.equal(manifest.health, "http://127.0.0.1:8080/health");
  assert.deepEqual(manifest.units, [
    "/usr/lib/systemd/system/hello.socket",
    "/usr/lib/systemd/system/hello-admin.socket",
    "/usr/lib/systemd/system/hello.service",
  ]);

  // A binary is copied as it is (mode 0755), and --user stages user units.
  const bin = `${h.home}/tool`;
  await Deno.writeTextFile(bin, "#!/bin/sh\necho tool\n", { mode: 0o700 });
  const b = await apprun(["install", bin, "--port", "9000", "--user", "--root", root], h.env);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(
    await Deno.readTextFile(`${root}/usr/lib/apprun/tool/tool`),
    "#!/bin/sh\necho tool\n",
  );
  assert.equal(Deno.statSync(`${root}/usr/lib/apprun/tool/tool`).mode! & 0o777, 0o755);
  assert.match(
    await Deno.readTextFile(`${root}/usr/lib/systemd/user/tool.service`),
    /^ExecStart=\/usr\/lib\/apprun\/tool\/tool serve /m,
  );
});

Deno.test("install --dry-run prints the files and commands and writes nothing", async () => {
  await using h = await privateHome();
  const r = await apprun([
    "install",
    HANDLER,
    "--name",
    "dry",
    "--port",
    "8081",
    "--user",
    "--dry-run",
  ], h.env);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(tree(h.home).filter((f) => !f.startsWith("/run")), []);
  assert.match(
    r.stdout,
    new RegExp(`# would write ${h.home}/.local/lib/apprun/dry/dry \\(mode 0755\\)`),
  );
  assert.match(r.stdout, /# would write .*\/dry\.socket \(mode 0644\):\n# Generated by apprun/);
  assert.match(r.stdout, /^ListenStream=8081$/m);
  assert.match(
    r.stdout,
    /^systemctl --user daemon-reload\nsystemctl --user enable --now dry\.socket$/m,
  );
});

Deno.test("install --parallel N puts serve --parallel N in ExecStart=; a bad count is one line", async () => {
  await using h = await privateHome();
  const args = ["install", HANDLER, "--name", "par", "--port", "8083", "--user", "--dry-run"];
  const r = await apprun([...args, "--parallel", "2"], h.env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ExecStart=\S+\/par serve --drain-timeout 10s --parallel 2$/m);
  assert.match(
    r.stdout,
    /^ExecReload=\S+ takeover -- \S+ serve --drain-timeout 10s --parallel 2$/m,
  );
  const bad = await apprun([...args, "--parallel", "0"], h.env);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, `apprun: --parallel: "0" is not a positive whole number\n`);
});

Deno.test("install never overwrites a unit it did not write, unless --force", async () => {
  await using h = await privateHome();
  const dir = `${h.home}/.config/systemd/user`;
  await Deno.mkdir(dir, { recursive: true });
  const mine = "[Service]\nExecStart=/bin/true\n";
  await Deno.writeTextFile(`${dir}/taken.service`, mine);
  const args = ["install", HANDLER, "--name", "taken", "--port", "8082", "--user"];
  const r = await apprun(args, h.env);
  assert.equal(r.code, 1);
  assert.equal(
    r.stderr.trim(),
    `apprun: ${dir}/taken.service exists and was not written by apprun: not overwriting it (--force does)`,
  );
  assert.equal(await Deno.readTextFile(`${dir}/taken.service`), mine);
  assert.deepEqual(
    [...Deno.readDirSync(dir)].map((e) => e.name),
    ["taken.service"],
    "nothing written",
  );
  await assert.rejects(Deno.stat(`${h.home}/.local/lib/apprun/taken`));
  const dry = await apprun([...args, "--dry-run"], h.env);
  assert.equal(dry.code, 1, "--dry-run says so too");

  const forced = await apprun([...args, "--force"], h.env);
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(await Deno.readTextFile(`${dir}/taken.service`), /^# Generated by apprun/);
  const again = await apprun(args, h.env);
  assert.equal(again.code, 0, `its own units are apprun's to rewrite: ${again.stderr}`);
  assert.match(again.stdout, /systemctl --user enable --now taken\.socket/);
});

const BAD: [string[], number, RegExp][] = [
  [["--name", "x"], 2, /^apprun: install needs --port N or --listen SPEC/],
  [["--name", "x", "--port", "http"], 2, /^apprun: --port: "http" is not a port/],
  [["--name", "x", "--port", "0"], 2, /^apprun: --port: 0 is not a port a socket unit can listen/],
  [["--name", "x", "--port", "1", "--listen", "2"], 2, /^apprun: --port and --listen/],
  [
    ["--name", "x", "--listen", "localhost:80"],
    2,
    /^apprun: --listen\.host: "localhost" is not an IP address/,
  ],
  [
    ["--name", "x", "--port", "80", "--env", "NOEQUALS"],
    2,
    /^apprun: --env: "NOEQUALS" is not NAME=VALUE/,
  ],
  [
    ["--name", "x", "--port", "80", "--env", "LISTEN_FDS=3"],
    2,
    /^apprun: --env LISTEN_FDS: is set by systemd/,
  ],
  [
    ["--name", "x", "--port", "80", "--drain-timeout", "soon"],
    2,
    /^apprun: --drain-timeout: "soon" is not a duration/,
  ],
  [
    ["--name", "x", "--port", "80", "--watchdog", "500ms"],
    2,
    /^apprun: --watchdog: 0\.5s: apprun pings at half/,
  ],
  [["--name", "bad name", "--port", "80"], 2, /^apprun: --name: "bad name" is not a unit name/],
  [
    ["--name", "x", "--port", "80", "--health", "ftp://x/"],
    2,
    /^apprun: --health: "ftp:\/\/x\/" is not an http\(s\) URL/,
  ],
  [["--name", "x", "--port", "80", "--bogus"], 2, /^apprun: Unknown option '--bogus'/],
  [["--name", "x", "--port", "80", "--max-connections", "30000"], 0, /^$/],
  [
    ["--name", "x", "--port", "80", "--max-connections", "0"],
    2,
    /^apprun: --max-connections: "0" is not a positive/,
  ],
  [
    ["--name", "x", "--port", "80", "--max-connections", "-1"],
    2,
    /^apprun: Option '--max-connections' argument is ambiguous\. Did you forget/,
  ],
];

Deno.test("install: each bad option is one line naming it, exit 2; missing files exit 1", async () => {
  await using h = await privateHome();
  for (const [args, code, re] of BAD) {
    const r = await apprun(["install", HANDLER, "--user", "--dry-run", ...args], h.env);
    assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(" "));
    assert.ok(r.stderr.trim().split("\n").length <= 1, `one line: ${r.stderr}`);
  }
  const missing = await apprun(["install", `${h.home}/nope.ts`, "--port", "80", "--user"], h.env);
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr.trim(), `apprun: ${h.home}/nope.ts does not exist`);
  await Deno.writeTextFile(`${h.home}/plain`, "data");
  const notExec = await apprun(["install", `${h.home}/plain`, "--port", "80", "--user"], h.env);
  assert.equal(notExec.code, 1);
  assert.match(notExec.stderr, /^apprun: .*\/plain is not executable: give a handler/);
  const two = await apprun(["install", HANDLER, HANDLER, "--port", "80"], h.env);
  assert.equal(two.code, 2);
  assert.match(two.stderr, /^apprun: install takes one handler or binary, got 2/);
});

Deno.test("install: relative paths, as the README writes them, are taken from the working directory", async () => {
  await using h = await privateHome();
  const stage = `${h.home}/stage`;
  const rel = (p: string) => `./${p.slice(ROOT.length + 1)}`;
  const r = await apprun(
    ["install", rel(HANDLER), "--name", "rel", "--port", "8080", "--root", rel(stage)],
    h.env,
  );
  assert.equal(r.code, 0, r.stderr);
  const manifest = JSON.parse(await Deno.readTextFile(`${stage}/usr/lib/apprun/rel/apprun.json`));
  assert.equal(manifest.source, HANDLER, "absolute and normalized");
  assert.match(await versionLine(`${stage}/usr/lib/apprun/rel/rel`), /^rel v1\.ts sha256:/);
  const up = await apprun(
    [
      "install",
      `../${ROOT.split("/").pop()}/${rel(HANDLER).slice(2)}`,
      "--name",
      "up",
      "--port",
      "8081",
      "--root",
      rel(stage),
    ],
    h.env,
  );
  assert.equal(up.code, 0, up.stderr);
});
