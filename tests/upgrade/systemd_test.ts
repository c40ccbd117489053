/**
 * `apprun upgrade` against a real systemd user manager (tests/_systemd.ts), after
 * `apprun install --user`: a good upgrade and then a NEW that crashes at start (rolled back,
 * its own last words printed), both with live keep-alive clients and counting WebSockets that
 * see no error at all. Then what runs NEW before the swap: the service's sandbox, not the
 * caller — a NEW that could write outside it refuses to load and is installed anyway, and a
 * NEW that needs a file the service cannot reach is refused before the swap, with the reason.
 */
import assert from "node:assert/strict";
import { systemdTest } from "../_systemd.ts";
import { freePort } from "../_net.ts";
import {
  apprun,
  installUser,
  jsonReport,
  LiveClients,
  printFigures,
  privateHome,
  UPGRADE_FIXTURES,
  versionOf,
} from "./_util.ts";

systemdTest(
  "upgrade --user under systemd: good upgrade, then a crashing NEW rolled back, live clients",
  async (m) => {
    await using h = await privateHome(m.env);
    const port = freePort();
    const health = `http://127.0.0.1:${port}/health`;
    const inst = await installUser("v1.ts", {
      name: "app",
      port,
      env: h.env,
      extra: ["--health", health],
    });
    assert.equal(inst.code, 0, inst.stdout + inst.stderr);
    assert.equal(await versionOf(port), "v1");
    const clients = await LiveClients.start(port);

    const good = await apprun(["upgrade", `${UPGRADE_FIXTURES}/v2.ts`, "--user", "--json"], h.env);
    assert.equal(good.code, 0, good.stdout + good.stderr + (await m.log()));
    const g = jsonReport(good);
    printFigures("systemd good upgrade", g);
    // The units apprun installs have ExecReload=: an upgrade is a warm reload, and says so.
    assert.match(good.stdout, /reloaded \(warm\) through systemd --user \(app\.service\) in /);
    assert.equal(g.path, "warm");
    assert.match(good.stdout, /healthy: .* answered 200/);
    assert.equal(String(g.pid), await m.show("app.service", "MainPID"));
    assert.equal(await versionOf(port), "v2");

    const bad = await apprun(
      [
        "upgrade",
        `${UPGRADE_FIXTURES}/crash.ts`,
        "--name",
        "app",
        "--user",
        "--json",
        "--timeout",
        "30s",
      ],
      h.env,
    );
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    const b = jsonReport(bad);
    printFigures("systemd crashing upgrade", b);
    assert.equal(b.result, "rolled back", bad.stdout + (await m.log()));
    assert.match(String(b.failure), /systemctl --user reload app\.service failed/);
    assert.match(bad.stdout, /nothing to restart, pid \d+ never stopped serving/);
    assert.match(
      bad.stdout,
      /^why it failed, from the reload through systemd --user \(app\.service\):\n {2}\| .*crash\.ts: cannot start \(simulated\)/m,
      `the cause, not 'see systemctl status': ${bad.stdout}`,
    );
    assert.equal(await versionOf(port), "v2");
    assert.equal(await m.show("app.service", "ActiveState"), "active");

    const { sockets } = await clients.stopAndCheck("systemd upgrades");
    for (const s of sockets) assert.deepEqual(s.versions, ["v1", "v2"]);

    // NEW's checks run in the service's sandbox (HOME read-only there), not as the caller.
    const sandboxed = await apprun(
      ["upgrade", `${UPGRADE_FIXTURES}/sandboxed.ts`, "--user"],
      h.env,
    );
    assert.equal(sandboxed.code, 0, sandboxed.stdout + sandboxed.stderr);
    assert.match(
      sandboxed.stdout,
      /^checked NEW in the sandbox of app\.service \(systemd-run --user\) in /m,
    );
    assert.equal(await versionOf(port), "sandboxed");

    // A NEW that needs a file the service cannot see (PrivateTmp= hides /tmp): refused first.
    const hidden = await Deno.makeTempDir({ prefix: "apprun-unreachable-" });
    try {
      await Deno.writeTextFile(`${hidden}/config`, "port=1\n");
      const unreachable = `${h.home}/unreachable`;
      await Deno.writeTextFile(
        unreachable,
        `#!/bin/sh\ncase "$1" in\nversion) echo unreachable 1 ;;\n` +
          `check|serve) cat '${hidden}/config' >/dev/null || exit 1; echo ok ;;\nesac\n`,
        { mode: 0o755 },
      );
      const refused = await apprun(["upgrade", unreachable, "--user"], h.env);
      assert.equal(refused.code, 1, refused.stdout + refused.stderr);
      assert.equal(
        refused.stderr.trim(),
        "apprun: NEW refused: `NEW check` exited 1 in the sandbox of app.service (systemd-run " +
          `--user): cat: ${hidden}/config: No such file or directory`,
      );
      assert.doesNotMatch(refused.stdout, /swapped/, "refused before the swap");
      assert.equal(await versionOf(port), "sandboxed");
    } finally {
      await Deno.remove(hidden, { recursive: true });
    }
  },
);
