/**
 * What `apprun package` puts in a .deb (dpkg-deb's own listing), and what Debian's lintian
 * says of it: no error and no warning; the few informational and experimental tags left are
 * listed here with the reason each stays (README, "Shipping with a package manager"), so a
 * new one fails this test until it is fixed or explained. Bad options are one line each.
 */
import assert from "node:assert/strict";
import { APPRUN } from "../_proc.ts";
import { privateHome, UPGRADE_FIXTURES } from "../upgrade/_util.ts";
import { buildDeb, missingTools } from "./_deb.ts";

const noTools = missingTools(["dpkg-deb", "lintian"]);
if (noTools !== null) console.log(`package content tests skipped: ${noTools}`);

/**
 * Tags lintian may still give, and why they stay:
 * - package-supports-alternative-init-but-no-init.d-script (I): the service is systemd's
 *   (Type=notify, fdstore): there is no SysV init script to ship;
 * - systemd-service-file-missing-documentation-key (I): no Documentation= URL is known for
 *   an app apprun packages;
 * - executable-in-usr-lib (X, experimental): /usr/lib/NAME/ is where a package's private
 *   programs go (FHS); the artifact is run by the service, not by users from PATH.
 */
const EXPLAINED = [
  "I: NAME: package-supports-alternative-init-but-no-init.d-script [usr/lib/systemd/system/NAME.service]",
  "I: NAME: systemd-service-file-missing-documentation-key [usr/lib/systemd/system/NAME.service]",
  "X: NAME: executable-in-usr-lib [usr/lib/NAME/NAME]",
];

async function run(cmd: string, args: string[]) {
  const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
}

for (const style of ["handoff", "stop-start"] as const) {
  Deno.test({
    name: `apprun package (${style}): the files, the control data, and lintian clean`,
    ignore: noTools !== null,
    async fn() {
      await using h = await privateHome();
      const deb = await buildDeb(`${UPGRADE_FIXTURES}/v1.ts`, {
        name: "hello",
        version: "1.2.0",
        port: 8080,
        style,
        dir: h.home,
      });
      const listing = await run("dpkg-deb", ["--contents", deb]);
      const files = listing.out.trim().split("\n").map((l) => {
        const f = l.split(/\s+/);
        return `${f[0]} ${f[1]} ${f[5]}`;
      }).filter((l) => !l.endsWith("/"));
      assert.deepEqual(files, [
        ...(style === "handoff" ? ["-rw-r--r-- root/root ./usr/lib/hello/apprun.json"] : []),
        "-rwxr-xr-x root/root ./usr/lib/hello/hello",
        "-rw-r--r-- root/root ./usr/lib/systemd/system/hello.service",
        "-rw-r--r-- root/root ./usr/lib/systemd/system/hello.socket",
        "-rw-r--r-- root/root ./usr/share/doc/hello/changelog.gz",
        "-rw-r--r-- root/root ./usr/share/doc/hello/copyright",
      ]);
      const control = (await run("dpkg-deb", ["--field", deb])).out;
      assert.match(control, /^Package: hello\nVersion: 1\.2\.0\nArchitecture: (amd64|arm64)\n/);
      assert.match(control, /^ hello, served by apprun: hello 1\.2\.0 v1\.ts sha256:\w{12} /m);
      const exec = style === "handoff" ? "/var/lib/apprun/hello/hello" : "/usr/lib/hello/hello";
      const service = await run("sh", [
        "-c",
        `dpkg-deb --fsys-tarfile '${deb}' | tar -xO ./usr/lib/systemd/system/hello.service`,
      ]);
      assert.match(service.out, new RegExp(`^ExecStart=${exec} serve --drain-timeout 10s$`, "m"));
      assert.match(service.out, /^CacheDirectory=hello$/m, "where the artifact unpacks");

      const lint = await run("lintian", [
        "--tag-display-limit",
        "0",
        "--display-info",
        "--display-experimental",
        "--pedantic",
        deb,
      ]);
      const tags = lint.out.trim().split("\n").filter(Boolean);
      assert.deepEqual(tags.filter((t) => /^[EW]:/.test(t)), [], lint.out);
      for (const t of tags) {
        assert.ok(EXPLAINED.includes(t.replaceAll("hello", "NAME")), `unexplained: ${t}`);
      }
      console.log(`  lintian (${style}): no error or warning; ${tags.length} explained tags`);
    },
  });
}

Deno.test("apprun package: each bad option is one line", async () => {
  await using h = await privateHome();
  const V1 = `${UPGRADE_FIXTURES}/v1.ts`;
  const cases: [string[], number, RegExp][] = [
    [[V1, "--version", "1", "--port", "80"], 2, /^apprun: package needs --name NAME$/],
    [[V1, "--name", "x", "--port", "80"], 2, /^apprun: package needs --version V$/],
    [[V1, "--name", "x", "--version", "1"], 2, /^apprun: package needs --port N or --listen/],
    [
      [V1, "--name", "x", "--version", "1", "--port", "80", "--maintainer", "nobody"],
      2,
      /^apprun: --maintainer: "nobody" is not "Full Name <email>"$/,
    ],
    [
      [V1, "--name", "Hello", "--version", "1", "--port", "80", "--maintainer", "A <a@b.c>"],
      1,
      /^apprun: --name: "Hello" is not a Debian package name/,
    ],
    [
      [V1, "--name", "xy", "--version", "one", "--port", "80", "--maintainer", "A <a@b.c>"],
      1,
      /^apprun: --version: "one" is not a Debian version/,
    ],
    [
      [V1, "--name", "x", "--version", "1", "--port", "80", "--upgrade-style", "fast"],
      2,
      /^apprun: --upgrade-style: "fast" is not handoff or stop-start$/,
    ],
  ];
  for (const [args, code, re] of cases) {
    const r = await new Deno.Command(APPRUN, {
      args: ["package", ...args, "-o", h.home],
      env: { ...h.env, DEBFULLNAME: "", DEBEMAIL: "", NAME: "", EMAIL: "" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(r.stderr);
    assert.equal(r.code, code, `${args.join(" ")}: ${err}`);
    assert.match(err.trim(), re, args.join(" "));
  }
});
