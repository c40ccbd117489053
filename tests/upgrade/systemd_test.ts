/**
 * `apprun upgrade` against a real systemd user manager (tests/_systemd.ts), after
 * `apprun install --user`: a good upgrade and then a NEW that crashes at start (rolled back),
 * both with live keep-alive clients and counting WebSockets that see no error at all.
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
    assert.match(good.stdout, /restarted through systemd --user \(app\.service\) in /);
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
    assert.match(String(b.failure), /systemctl --user restart app\.service failed/);
    assert.equal(await versionOf(port), "v2");
    assert.equal(await m.show("app.service", "ActiveState"), "active");

    const { sockets } = await clients.stopAndCheck("systemd upgrades");
    for (const s of sockets) assert.deepEqual(s.versions, ["v1", "v2"]);
  },
);
