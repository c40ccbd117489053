/**
 * @module
 * Rendered user units, run for real in the private user manager of tests/_systemd.ts:
 * socket activation with one socket unit per fd name, ExecStart=/Environment= quoting as
 * systemd reads it, and the pinned Deno serving under the full sandbox — with apprun's
 * syscalls, the fdstore across a restart, and jitless under MemoryDenyWriteExecute=yes.
 */
import assert from "node:assert/strict";
import { systemdTest, type UserManager } from "../_systemd.ts";
import { freePort, readLineFrom } from "../_net.ts";
import { BIND_ROOT } from "../_systemd_app.ts";
import { type RenderedUnit, renderUnits } from "../../units/mod.ts";
import { assertProbeChecks, FIXTURES, probeUnits } from "./_util.ts";

/** Installs `units` and starts their sockets. */
async function installAndStart(m: UserManager, units: RenderedUnit[]): Promise<void> {
  await m.installUnits(units);
  await m.start(...units.filter((u) => u.file.endsWith(".socket")).map((u) => u.file));
}

/** The probe's JSON answer, or a failure message with the manager's log. */
async function askProbe(m: UserManager, port: number): Promise<Record<string, unknown>> {
  let line = "";
  try {
    line = await readLineFrom({ hostname: "127.0.0.1", port });
  } catch (err) {
    line = `(${(err as Error).message})`;
  }
  if (!line.startsWith("{")) assert.fail(`probe gave ${JSON.stringify(line)}\n${await m.log()}`);
  return JSON.parse(line);
}

function assertSandboxed(answer: Record<string, unknown>): void {
  assertProbeChecks(answer);
  const sandbox = answer.sandbox as Record<string, string>;
  assert.equal(sandbox.noNewPrivs, "1");
  assert.equal(sandbox.seccomp, "2", "no seccomp filter: SystemCallFilter= not applied");
  assert.equal(sandbox.capBnd, "0000000000000000", "CapabilityBoundingSet= not applied");
  assert.notEqual(sandbox.uidMap, "0 0 4294967295", "PrivateUsers= not applied");
  assert.match(sandbox.etcWrite, /Read-only file system/, "ProtectSystem=strict not applied");
}

systemdTest(
  "renderUnits() user units: one socket per fd name, argv and env as written",
  async (m) => {
    const port = freePort();
    const path = `${m.runtimeDir}/admin.sock`;
    const args = ["a b", "100%", "$HOME", "${X}", ";", "", 'q"uote', "back\\slash", "\\;"];
    const more = ["tab\there", "ünï ✓", "-x=1,2"];
    const env = {
      T_SPACE: "b c",
      T_QUOTE: '"x\\y',
      T_PERCENT: "100%d",
      T_DOLLAR: "$HOME ${X}",
      T_UNICODE: "ünï ✓",
      T_TAB: "a\tb",
      T_EMPTY: "",
    };
    const units = renderUnits({
      name: "quoting",
      scope: "user",
      listeners: [
        { kind: "tcp", host: "127.0.0.1", port },
        { kind: "unix", path, name: "admin" },
      ],
      execStart: ["/usr/bin/python3", `${FIXTURES}/notify_server.py`, ...args, ...more],
      environment: env,
      denoCache: false,
      bindReadOnlyPaths: BIND_ROOT,
    });
    assert.deepEqual(units.map((u) => u.file), [
      "quoting.socket",
      "quoting-admin.socket",
      "quoting.service",
    ]);
    await installAndStart(m, units);

    const http = JSON.parse(await readLineFrom({ hostname: "127.0.0.1", port }));
    const admin = JSON.parse(await readLineFrom({ transport: "unix", path }));
    assert.equal(http.fdName, "http");
    assert.equal(admin.fdName, "admin");
    assert.equal(http.pid, admin.pid, "both sockets activate the one service");
    assert.equal(String(http.pid), await m.show("quoting.service", "MainPID"));
    assert.deepEqual(http.argv, [...args, ...more]);
    assert.deepEqual(http.env, env);

    // What the manager parsed from the rendered text.
    const props: Record<string, string> = {
      Type: "notify",
      NotifyAccess: "exec",
      KillMode: "mixed",
      Restart: "on-failure",
      FileDescriptorStoreMax: "16",
      LimitNOFILE: "20000",
      TimeoutStopUSec: "30s",
      RestartUSec: "1s",
      StartLimitBurst: "30",
      StartLimitIntervalUSec: "1min",
      ProtectHome: "read-only",
      ProtectSystem: "strict",
    };
    for (const [prop, value] of Object.entries(props)) {
      assert.equal(await m.show("quoting.service", prop), value, prop);
    }
    const triggeredBy = (await m.show("quoting.service", "TriggeredBy")).split(" ").sort();
    assert.deepEqual(triggeredBy, ["quoting-admin.socket", "quoting.socket"]);
    assert.equal(await m.show("quoting.socket", "Backlog"), "4096");
    assert.equal(await m.show("quoting.socket", "NoDelay"), "yes");
    assert.equal(await m.show("quoting-admin.socket", "SocketMode"), "0660");
    assert.equal(await m.show("quoting-admin.socket", "FileDescriptorName"), "admin");
  },
);

systemdTest(
  "renderUnits() user units run Deno under the full sandbox, fdstore kept on restart",
  async (m) => {
    const port = freePort();
    await installAndStart(m, probeUnits("probe", port));

    const first = await askProbe(m, port);
    assertSandboxed(first);
    assert.deepEqual(first.fdNames, ["http"]);
    assert.equal(first.inheritedFrom, null);
    assert.equal(first.v8Flags, null);
    assert.match((first.checks as Record<string, string>).denoDir, /^ok .*\/cache\/probe$/);
    assert.equal(await m.show("probe.service", "NFileDescriptorStore"), "1");

    // An upgrade: the stored fd reaches the next process, behind the socket unit's fds.
    const restarted = await m.systemctl("restart", "probe.service");
    assert.equal(restarted.code, 0, restarted.stderr);
    const second = await askProbe(m, port);
    assertSandboxed(second);
    assert.notEqual(second.pid, first.pid);
    assert.deepEqual(second.fdNames, ["http", "probe-state"]);
    assert.equal(second.inheritedFrom, String(first.pid));
    assert.equal(String(second.pid), await m.show("probe.service", "MainPID"));
  },
);

systemdTest(
  "renderUnits({ jitless: true }) runs Deno under MemoryDenyWriteExecute=yes",
  async (m) => {
    const port = freePort();
    const units = probeUnits("jitless", port, { jitless: true });
    assert.match(units[1].text, /^MemoryDenyWriteExecute=yes$/m);
    await installAndStart(m, units);

    const answer = await askProbe(m, port);
    assertSandboxed(answer);
    assert.equal(answer.v8Flags, "--jitless");
    assert.equal(await m.show("jitless.service", "MemoryDenyWriteExecute"), "yes");
  },
);
