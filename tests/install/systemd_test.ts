/**
 * `apprun install --user` into a real systemd user manager (tests/_systemd.ts): the socket is
 * enabled and listening while the service is not started; the first connection activates
 * the service, which stays "activating" until apprun sends READY=1 (the fixture takes 1.5 s
 * to load) and is then "active" with its STATUS= line in `systemctl --user status`.
 */
import assert from "node:assert/strict";
import { systemdTest } from "../_systemd.ts";
import { freePort } from "../_net.ts";
import { waitUntil } from "../_poll.ts";
import { apprun, installUser, privateHome } from "../upgrade/_util.ts";

systemdTest(
  "install --user: socket enabled and listening, first request activates, READY gates it",
  async (m) => {
    await using h = await privateHome(m.env);
    const port = freePort();
    const r = await installUser("slow_start.ts", { name: "hello", port, env: h.env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /ran systemctl --user daemon-reload\n {2}ran systemctl --user enable --now hello\.socket\n/,
    );
    assert.equal(await m.show("hello.socket", "UnitFileState"), "enabled");
    assert.equal(await m.show("hello.socket", "ActiveState"), "active");
    assert.equal(await m.show("hello.service", "ActiveState"), "inactive");
    assert.equal(await m.show("hello.service", "ExecMainPID"), "0", "not started by install");

    const t0 = performance.now();
    const first = fetch(`http://127.0.0.1:${port}/version`).then((res) => res.text());
    const seen = new Set<string>();
    await waitUntil(
      async () => {
        const state = await m.show("hello.service", "ActiveState");
        seen.add(state);
        return state === "active";
      },
      () => `hello.service to become active (saw ${[...seen]})`,
      { timeoutMs: 30_000, everyMs: 50 },
    );
    const activeAt = performance.now() - t0;
    assert.ok(seen.has("activating"), `held in activating before READY=1: saw ${[...seen]}`);
    assert.ok(activeAt >= 1500, `active only after the 1.5 s load (${activeAt.toFixed(0)} ms)`);
    assert.equal(await first, "v1", "the first connection was kept and answered");
    console.log(
      `  first request → active in ${activeAt.toFixed(0)} ms (1.5 s of it the app's load)`,
    );
    const status = await m.systemctl("status", "hello.service");
    assert.match(status.stdout, /Status: "Serving: \d+ connections/, status.stdout);
    const st = await apprun(["status", "--name", "hello", "--user"], h.env);
    assert.equal(st.code, 0, st.stdout + st.stderr);
    assert.match(st.stdout, /^hello: ready under systemd --user \(hello\.service\)\n {2}pid: \d+/);
    assert.match(st.stdout, /stored fds: 0/);
  },
);
