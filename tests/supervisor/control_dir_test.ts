/**
 * The control socket's directory must be this user's alone (the default `/tmp/apprun-UID` sits
 * in a world-writable directory): one owned by another uid, a symbolic link, or one open to
 * group or others is refused with one line, by the supervisor (`apprun serve`) and by the
 * client (`apprun status`), which must not take a stranger's socket's word for the service.
 */
import assert from "node:assert/strict";
import { checkPrivateDir, ensurePrivateDir } from "../../runtime/supervisor/mod.ts";
import { SupervisorError } from "../../runtime/supervisor/mod.ts";
import { APPRUN, FIXTURES, spawn, tempDir } from "../_proc.ts";

const NOBODY = 65534;

async function assertRefused(path: string, why: RegExp): Promise<void> {
  await assert.rejects(ensurePrivateDir(path), (err: unknown) => {
    assert.ok(err instanceof SupervisorError, String(err));
    assert.match(err.message, /^refusing the control directory .*: /);
    assert.match(err.message, why);
    assert.doesNotMatch(err.message, /\n/);
    return true;
  });
}

Deno.test("ensurePrivateDir() creates a 0700 directory, and accepts it again", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  const path = `${dir}/a/b`;
  await ensurePrivateDir(path);
  const st = await Deno.lstat(path);
  assert.equal(st.mode! & 0o777, 0o700);
  assert.equal(st.uid, Deno.uid());
  await ensurePrivateDir(path);
  await checkPrivateDir(path);
});

Deno.test("ensurePrivateDir() refuses another uid's directory, a symlink and mode 0755", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  const theirs = `${dir}/theirs`;
  await Deno.mkdir(theirs, { mode: 0o700 });
  await Deno.chown(theirs, NOBODY, NOBODY);
  await assertRefused(theirs, new RegExp(`owned by uid ${NOBODY}, not by this user`));
  const link = `${dir}/link`;
  const mine = `${dir}/mine`;
  await Deno.mkdir(mine, { mode: 0o700 });
  await Deno.symlink(mine, link);
  await assertRefused(link, /it is a symbolic link/);
  const open = `${dir}/open`;
  await Deno.mkdir(open);
  await Deno.chmod(open, 0o755);
  await assertRefused(open, /its mode 0755 lets others in/);
  const file = `${dir}/file`;
  await Deno.writeTextFile(file, "");
  await Deno.chmod(file, 0o700);
  await assert.rejects(ensurePrivateDir(file), SupervisorError);
});

Deno.test("apprun serve refuses a control directory another user owns, with one line", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  const theirs = `${dir}/theirs`;
  await Deno.mkdir(theirs, { mode: 0o700 });
  await Deno.chown(theirs, NOBODY, NOBODY);
  await using proc = spawn(APPRUN, [
    "serve",
    `${FIXTURES}/echo.ts`,
    "--port",
    "0",
    "--control",
    `${theirs}/app.sock`,
  ]);
  const status = await proc.wait(15_000);
  assert.notEqual(status.code, 0, proc.log);
  assert.match(proc.log, new RegExp(`refusing the control directory ${theirs}: .*uid ${NOBODY}`));
  assert.doesNotMatch(proc.log, /generation 1: started/);
});

Deno.test("apprun status does not believe a socket in a directory another user owns", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  const theirs = `${dir}/theirs`;
  await Deno.mkdir(theirs, { mode: 0o700 });
  const path = `${theirs}/app.sock`;
  // The other user's fake supervisor: answers every request with a "ready" status.
  const listener = Deno.listen({ transport: "unix", path });
  const serving = (async () => {
    for await (const conn of listener) {
      const reply = {
        ok: true,
        generation: 1,
        pid: 1,
        state: "ready",
        status: "fake",
        storedFds: [],
        lastHandoffMs: null,
        restarts: 0,
      };
      await conn.write(new TextEncoder().encode(JSON.stringify(reply) + "\n")).catch(() => {});
      conn.close();
    }
  })();
  await Deno.chown(theirs, NOBODY, NOBODY);
  try {
    const out = await new Deno.Command(APPRUN, {
      args: ["status", "--name", "app", "--control", path],
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.notEqual(out.code, 0, text);
    assert.doesNotMatch(text, /fake/);
    assert.match(text, new RegExp(`refusing the control directory ${theirs}: .*uid ${NOBODY}`));
  } finally {
    listener.close();
    await serving.catch(() => {});
  }
});
