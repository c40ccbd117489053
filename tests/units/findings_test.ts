/**
 * @module
 * The evidence behind units/hardening.ts, re-measured: each test takes the rendered probe
 * unit, changes the one setting a finding is about, and checks that Deno fails the way the
 * comment says. If a newer Deno or systemd behaves otherwise these fail, and the hardening
 * choices (and their comments) need another look.
 */
import assert from "node:assert/strict";
import { isAvailable, startUserManager, type UserManager } from "../_systemd.ts";
import { renderUnits } from "../../units/mod.ts";
import { BIND_REPO, DENO, FIXTURES, freePort, readLineFrom, REPO } from "./_util.ts";

const reason = isAvailable();
if (reason !== null) console.log(`units findings tests skipped: ${reason}`);

/** Renders the probe's user units, lets `edit` change the service text, and installs them. */
async function installProbe(
  m: UserManager,
  port: number,
  edit: (service: string) => string,
): Promise<string> {
  const errLog = `${m.runtimeDir}/probe.err`;
  const units = renderUnits({
    name: "finding",
    scope: "user",
    listeners: [{ kind: "tcp", host: "127.0.0.1", port }],
    execStart: [DENO, "run", "--allow-all", `${FIXTURES}/notify_probe.ts`],
    workingDirectory: REPO,
    bindReadOnlyPaths: BIND_REPO,
  });
  for (const u of units) {
    const text = u.file.endsWith(".service")
      ? edit(u.text).replace("[Service]\n", `[Service]\nStandardError=append:${errLog}\n`)
      : u.text;
    await m.writeUnit(u.file, text);
  }
  await m.daemonReload();
  const r = await m.systemctl("start", "finding.socket");
  assert.equal(r.code, 0, r.stderr);
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
    const buf = new Uint8Array(1);
    const read = conn.read(buf).catch(() => null);
    const timeout = new Promise<"nothing">((r) => setTimeout(() => r("nothing"), 100));
    const first = await Promise.race([read, timeout]);
    assert.ok(first === "nothing" || first === null, "a failed service answered");
    return how;
  } finally {
    conn.close();
  }
}

/** Waits until the service's first run has ended in failure; returns how. */
async function failure(m: UserManager): Promise<{ result: string; code: string; status: string }> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const result = await m.show("finding.service", "Result");
    if (result !== "success") {
      return {
        result,
        code: await m.show("finding.service", "ExecMainCode"),
        status: await m.show("finding.service", "ExecMainStatus"),
      };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`finding.service did not fail\n${await m.log()}`);
}

function replaceLine(text: string, from: RegExp, to: string): string {
  assert.match(text, from, `rendered unit lacks ${from}`);
  return text.replace(from, to);
}

Deno.test({
  name: "finding: MemoryDenyWriteExecute=yes kills Deno unless V8 runs --jitless",
  ignore: reason !== null,
  async fn() {
    await using m = await startUserManager();
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
});

Deno.test({
  name: "finding: V8 calls pkey_alloc (@pkey); without it and without EPERM, Deno gets SIGSYS",
  ignore: reason !== null,
  async fn() {
    await using m = await startUserManager();
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
});

Deno.test({
  name: "finding: without @pkey but with SystemCallErrorNumber=EPERM, Deno still serves",
  ignore: reason !== null,
  async fn() {
    await using m = await startUserManager();
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
    for (const [name, result] of Object.entries(answer.checks as Record<string, string>)) {
      assert.match(result, /^ok/, name);
    }
  },
});

Deno.test({
  name: "finding: ProtectHome=yes in a user unit hides NOTIFY_SOCKET (under /run/user)",
  ignore: reason !== null,
  async fn() {
    await using m = await startUserManager();
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
});
