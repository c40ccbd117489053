/**
 * `ExecReload=` as systemd 252 runs it, with a protocol-level reload command
 * (fixtures/reload.py) and the python worker, the supervisor in its own process (it becomes a
 * subreaper): the reload command gets `$MAINPID` and the notify socket but no listeners; its
 * `MAINPID=` (NotifyAccess=exec) makes the process it started — re-parented to the supervisor —
 * the main one, and a later stop or restart goes to that one; a reload that exits non-zero
 * changes nothing and says why (its last STATUS=); one that does not finish within the start
 * timeout is killed; requests during a reload are served by one more reload after it;
 * MAINPID= naming a process that is not the supervisor's child is refused; without a reload
 * command a reload is "not applicable".
 */
import assert from "node:assert/strict";
import { DENO, isAlive, type Proc, spawn } from "../_proc.ts";
import { PYTHON, pyWorker } from "./_harness.ts";
import { supervisorRequest } from "../../runtime/supervisor/mod.ts";

const SUPERVISE = new URL("./fixtures/supervise.ts", import.meta.url).pathname;
const RELOAD_PY = new URL("./fixtures/reload.py", import.meta.url).pathname;

/** The supervisor as a process, with the reload command in `mode` (none: no ExecReload=). */
async function supervise(
  mode: string | null,
  config: Record<string, unknown> = {},
): Promise<{ proc: Proc; control: string; dir: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "apprun-reload-" });
  const control = `${dir}/ctl.sock`;
  const reload = mode === null ? undefined : {
    path: PYTHON,
    args: [RELOAD_PY],
    env: { PATH: Deno.env.get("PATH") ?? "", TR_MODE: mode },
  };
  const proc = spawn(DENO, [
    "run",
    "-A",
    SUPERVISE,
    JSON.stringify({ worker: pyWorker(), controlSocket: control, reload, ...config }),
  ]);
  await proc.waitFor(/generation 1 ready/);
  return {
    proc,
    control,
    dir,
    async [Symbol.asyncDispose]() {
      proc.kill("SIGTERM");
      await proc.wait();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

// deno-lint-ignore no-explicit-any
async function ask(control: string, req: any): Promise<any> {
  return await supervisorRequest(control, req, 20_000);
}

Deno.test("reload: the command gets $MAINPID and the notify socket, no listeners", async () => {
  await using s = await supervise("env");
  const { pid } = await ask(s.control, { cmd: "status" });
  const reply = await ask(s.control, { cmd: "reload" });
  assert.deepEqual([reply.ok, reply.pid], [true, pid], "nothing replaced the main process");
  const status = await ask(s.control, { cmd: "status" });
  assert.equal(status.status, `MAINPID=${pid} NOTIFY=yes LISTEN_FDS=-`);
  assert.equal(status.state, "ready");
});

Deno.test("reload: MAINPID= from the command makes its orphan the main process", async () => {
  await using s = await supervise("switch");
  const old = (await ask(s.control, { cmd: "status" })).pid;
  const reply = await ask(s.control, { cmd: "reload" });
  assert.equal(reply.ok, true, JSON.stringify(reply));
  assert.notEqual(reply.pid, old);
  const status = await ask(s.control, { cmd: "status" });
  assert.deepEqual([status.pid, status.state, status.generation], [reply.pid, "ready", 2]);
  assert.match(
    s.proc.log,
    new RegExp(
      `generation 2: started pid ${reply.pid} as the main process .* replacing pid ${old}`,
    ),
  );
  // The next stop (a restart) goes to the new main process, which the supervisor reaps.
  const restarted = await ask(s.control, { cmd: "restart" });
  assert.equal(restarted.ok, true, JSON.stringify(restarted));
  assert.match(s.proc.log, new RegExp(`SIGTERM to pid ${reply.pid} \\(restart\\)`));
  // Reaped by the supervisor (its own child now), however it ended.
  assert.match(s.proc.log, new RegExp(`pid ${reply.pid} (exited with status 0|killed by SIGTERM)`));
  assert.equal(isAlive(reply.pid), false);
  // The replaced one was the supervisor's to end (no cgroup): at the latest when it stops.
  s.proc.kill("SIGTERM");
  await s.proc.wait();
  assert.equal(isAlive(old), false, "the replaced main process was left running");
});

Deno.test("reload: a command that fails changes nothing and says why", async () => {
  await using s = await supervise("fail");
  const old = (await ask(s.control, { cmd: "status" })).pid;
  const reply = await ask(s.control, { cmd: "reload" });
  assert.deepEqual(reply, { ok: false, error: "not reloaded: it broke" });
  const status = await ask(s.control, { cmd: "status" });
  assert.deepEqual([status.pid, status.state], [old, "ready"]);
  assert.match(s.proc.log, /reload \(control request\) refused, generation 1 .* it broke/);
});

Deno.test("reload: a command past the start timeout is killed; nothing changes", async () => {
  await using s = await supervise("hang", { startTimeoutMs: 800 });
  const old = (await ask(s.control, { cmd: "status" })).pid;
  const t0 = performance.now();
  const reply = await ask(s.control, { cmd: "reload" });
  assert.equal(reply.ok, false);
  assert.match(reply.error, /not reloaded: the reload did not finish within 800 ms/);
  assert.ok(performance.now() - t0 >= 750, "killed before the start timeout");
  assert.match(s.proc.log, /reload operation timed out \(800 ms\): killing the reload command/);
  assert.equal((await ask(s.control, { cmd: "status" })).pid, old);
});

Deno.test("reload: requests during a reload are served by one more reload", async () => {
  await using s = await supervise("slow");
  const replies = await Promise.all([0, 100, 200, 300].map(async (delay) => {
    await new Promise((r) => setTimeout(r, delay));
    return await ask(s.control, { cmd: "reload" });
  }));
  for (const r of replies) assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal(s.proc.log.match(/reload command as pid/g)?.length, 2, s.proc.log);
});

Deno.test("reload: MAINPID= naming a process that is not the supervisor's child is refused", async () => {
  await using s = await supervise("child");
  const old = (await ask(s.control, { cmd: "status" })).pid;
  const reply = await ask(s.control, { cmd: "reload" });
  assert.deepEqual([reply.ok, reply.pid], [true, old]);
  assert.match(
    s.proc.log,
    /MAINPID=\d+ refused \(sent by pid \d+\): not a child of the supervisor/,
  );
});

Deno.test("reload: without a reload command it is not applicable", async () => {
  await using s = await supervise(null);
  const reply = await ask(s.control, { cmd: "reload" });
  assert.deepEqual(reply, {
    ok: false,
    error: "reload is not applicable: no reload command (ExecReload=)",
  });
});
