/**
 * What `apprun upgrade` run as root takes as NEW, and what it runs (issue 11): NEW is copied
 * beside the installed binary first and the copy is what gets checked (and installed); a
 * NEW that another user could change — theirs, writable by group or others, or a handler in
 * a directory they can write — is refused before a byte of it is copied. With nothing running
 * the service, a good NEW is swapped in and left for its next start.
 */
import assert from "node:assert/strict";
import { apprun, privateHome, UPGRADE_FIXTURES, versionLine } from "./_util.ts";
import { freePort } from "../_net.ts";

const notRoot = Deno.uid() === 0 ? null : `these checks apply to root (uid is ${Deno.uid()})`;
if (notRoot) console.log(`upgrade trust tests skipped: ${notRoot}`);

Deno.test({
  name: "upgrade as root: NEW others could change is refused; the copy is what is checked",
  ignore: notRoot !== null,
  async fn() {
    await using h = await privateHome();
    const inst = await apprun(
      [
        "install",
        `${UPGRADE_FIXTURES}/v1.ts`,
        "--name",
        "trust",
        "--port",
        String(freePort()),
        "--user",
      ],
      h.env,
    );
    assert.equal(inst.code, 0, inst.stderr);
    const bin = `${h.home}/.local/lib/apprun/trust/trust`;
    const dir = bin.slice(0, bin.lastIndexOf("/"));
    const before = await versionLine(bin);
    const upgrade = (what: string) => apprun(["upgrade", what, "--name", "trust", "--user"], h.env);
    const script = async (path: string, body: string, mode = 0o755) => {
      await Deno.writeTextFile(path, `#!/bin/sh\n${body}\n`, { mode });
      await Deno.chmod(path, mode);
      return path;
    };

    const theirs = await script(`${h.home}/theirs`, 'echo "theirs 1"');
    await Deno.chown(theirs, 65534, 65534);
    const r1 = await upgrade(theirs);
    assert.equal(r1.code, 1);
    assert.equal(
      r1.stderr.trim(),
      `apprun: NEW ${theirs} is owned by uid 65534: run as root, apprun installs only files root ` +
        "owns (check it, then chown root:root it)",
    );
    const shared = await script(`${h.home}/shared`, 'echo "shared 1"', 0o775);
    const r2 = await upgrade(shared);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /^apprun: NEW .*\/shared is writable by its group: run as root/);

    const open = `${h.home}/open`;
    await Deno.mkdir(open);
    await Deno.chmod(open, 0o777);
    await Deno.writeTextFile(
      `${open}/app.ts`,
      'export default { fetch: () => new Response("x") };\n',
    );
    const r3 = await upgrade(`${open}/app.ts`);
    assert.equal(r3.code, 1);
    assert.match(
      r3.stderr,
      new RegExp(
        `^apprun: NEW ${open}/app\\.ts is in ${open}, which uid 0's group or others can change`,
      ),
    );
    // Judged on the opened file before a byte is copied: no copy is left, nothing swapped.
    assert.deepEqual([...Deno.readDirSync(dir)].filter((e) => e.name.startsWith(".")), []);
    assert.equal(await versionLine(bin), before);

    // The copy beside BIN is what runs the checks (not the file named, which could change).
    const named = await script(
      `${h.home}/named`,
      'case "$1" in version) echo "named 1" ;; check) echo "checked $0" >&2; exit 1 ;; esac',
    );
    const r4 = await upgrade(named);
    assert.equal(r4.code, 1);
    const checked = /checked (\S+)$/.exec(r4.stderr.trim())?.[1] ?? "";
    assert.ok(
      checked.startsWith(`${dir}/.trust.new-`),
      `checked ${checked}, not a copy beside BIN`,
    );
    await assert.rejects(Deno.stat(checked), "the refused copy is removed");
    assert.equal(await versionLine(bin), before, "nothing was swapped");

    // Nothing runs it: a good NEW is swapped in and its next start runs it.
    const good = await upgrade(`${UPGRADE_FIXTURES}/v2.ts`);
    assert.equal(good.code, 0, good.stdout + good.stderr);
    assert.match(good.stdout, /^trust is not running \(no manager .*\): its next start runs NEW$/m);
    assert.match(
      good.stdout,
      /^swapped trust: trust v1\.ts .* → trust v2\.ts .* \(not running: no restart\)$/m,
    );
    assert.match(await versionLine(bin), /^trust v2\.ts /);
  },
});
