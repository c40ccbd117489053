/**
 * @module
 * The evidence behind units/hardening.ts, re-measured: each test takes the rendered probe
 * unit, changes the one setting a finding is about, and checks that Deno fails the way the
 * comment says. If a newer Deno or systemd behaves otherwise these fail, and the hardening
 * choices (and their comments) need another look.
 */
import assert from "node:assert/strict";
import { systemdTest, type UserManager } from "../_systemd.ts";
import { freePort, readLineFrom } from "../_net.ts";
import { waitUntil, withDeadline } from "../_poll.ts";
import { assertProbeChecks, probeUnits } from "./_util.ts";

/** Renders the probe's user units, lets `edit` change the service text, and installs them. */
async function installProbe(
  m: UserManager,
  port: number,
  edit: (service: string) => string,
): Promise<string> {
  const errLog = `${m.runtimeDir}/probe.err`;
  const units = probeUnits("finding", port)
    .map((u) => u.file.endsWith(".service") ? { ...u, text: edit(u.text) } : u);
  await m.installUnits(units, { logFile: errLog });
  await m.start("finding.socket");
  return errLog;
}

/**
 * Connects (which activates the service), waits for the service to fail, and checks that
 * the connection got no answer meanwhile. The socket unit keeps it queued until the start
 * limit gives up, so the test does not wait for EOF.
 */
async function pokeUntilFailure(m: UserManager, port: number) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const how = await failure(m);
    const first = await withDeadline(conn.read(new Uint8Array(1)).catch(() => null), 100);
    assert.ok(first === "timeout" || first === null, "a failed service answered");
    return how;
  } finally {
    conn.close();
  }
}

/** Waits until the service's first run has ended in failure; returns how. */
async function failure(m: UserManager): Promise<{ result: string; code: string; status: string }> {
  const result = await waitUntil(
    async () => {
      const r = await m.show("finding.service", "Result");
      return r !== "success" ? r : null;
    },
    async () => `finding.service to fail\n${await m.log()}`,
    { timeoutMs: 15_000, everyMs: 50 },
  );
  return {
    result,
    code: await m.show("finding.service", "ExecMainCode"),
    status: await m.show("finding.service", "ExecMainStatus"),
  };
}

function replaceLine(text: string, from: RegExp, to: string): string {
  assert.match(text, from, `rendered unit lacks ${from}`);
  return text.replace(from, to);
}

systemdTest(
  "finding: MemoryDenyWriteExecute=yes kills Deno unless V8 runs --jitless",
  async (m) => {
    const port = freePort();
    const errLog = await installProbe(
      m,
      port,
      (s) => replaceLine(s, /^UMask=0077$/m, "UMask=0077\nMemoryDenyWriteExecute=yes"),
    );
    const how = await pokeUntilFailure(m, port);
    assert.notEqual(how.result, "success");
    // V8 asserts that mprotect(PROT_EXEC) failed with ENOMEM (12); the filter says EPERM.
    assert.match(
      await Deno.readTextFile(errLog),
      /Check failed: 12 == \(\*__errno_location \(\)\)/,
    );
  },
);

systemdTest(
  "finding: V8 calls pkey_alloc (@pkey); without it and without EPERM, Deno gets SIGSYS",
  async (m) => {
    const port = freePort();
    await installProbe(m, port, (s) => {
      s = replaceLine(
        s,
        /^SystemCallFilter=@system-service @pkey$/m,
        "SystemCallFilter=@system-service",
      );
      return replaceLine(s, /^SystemCallErrorNumber=EPERM\n/m, "");
    });
    const how = await pokeUntilFailure(m, port);
    assert.equal(how.result, "signal");
    assert.equal(how.status, "31", `SIGSYS is 31; got ${JSON.stringify(how)}`);
  },
);

systemdTest(
  "finding: without @pkey but with SystemCallErrorNumber=EPERM, Deno still serves",
  async (m) => {
    const port = freePort();
    await installProbe(
      m,
      port,
      (s) =>
        replaceLine(
          s,
          /^SystemCallFilter=@system-service @pkey$/m,
          "SystemCallFilter=@system-service",
        ),
    );
    const answer = JSON.parse(await readLineFrom({ hostname: "127.0.0.1", port }));
    assertProbeChecks(answer);
  },
);

systemdTest(
  "finding: ProtectHome=yes in a user unit hides NOTIFY_SOCKET (under /run/user)",
  async (m) => {
    assert.match(m.runtimeDir, /^\/run\/user\//);
    const port = freePort();
    const errLog = await installProbe(
      m,
      port,
      (s) => replaceLine(s, /^ProtectHome=read-only$/m, "ProtectHome=yes"),
    );
    const how = await pokeUntilFailure(m, port);
    assert.equal(how.result, "exit-code", JSON.stringify(how));
    assert.match(await Deno.readTextFile(errLog), /sendmsg failed: EACCES/);
  },
);
