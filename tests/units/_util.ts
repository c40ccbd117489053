/**
 * @module
 * Shared bits of the units/ tests: fixture paths, a base command line and listener, the probe's
 * rendered units and the checks it reports, and the check that a call throws apprun's
 * ERR_UNIT_OPTION naming the right option.
 */
import assert from "node:assert/strict";
import { AppRunError } from "../../runtime/errors.ts";
import {
  type Listener,
  type RenderedUnit,
  renderServiceUnit,
  renderSocketUnit,
  renderUnits,
  type ServiceUnitOptions,
  type SocketUnitOptions,
  UnitOptionError,
  type UnitSetOptions,
} from "../../units/mod.ts";
import { DENO, ROOT } from "../_proc.ts";
import { BIND_ROOT } from "../_systemd_app.ts";

export const FIXTURES = `${ROOT}/tests/units/fixtures`;
export const GOLDEN = `${ROOT}/tests/units/golden`;

/** A server command line and a listener for tests that vary one other option. */
export const EXEC = ["/usr/local/bin/apprun", "serve", "/srv/app/app.ts"];
export const TCP: Extract<Listener, { kind: "tcp" }> = {
  kind: "tcp",
  host: "127.0.0.1",
  port: 8080,
};
/** renderServiceUnit() of app.service with `o` on top of EXEC. */
export const service = (o: Partial<ServiceUnitOptions>): string =>
  renderServiceUnit({ name: "app", execStart: EXEC, ...o } as ServiceUnitOptions);
/** renderSocketUnit() of app.socket with `o` on top of one TCP listener. */
export const socket = (o: Partial<SocketUnitOptions>): string =>
  renderSocketUnit({ name: "app", listeners: [TCP], ...o } as SocketUnitOptions);

/**
 * Asserts that `fn` throws a UnitOptionError (an AppRunError, code ERR_UNIT_OPTION) whose
 * `option` is `option` and whose message names it and matches `why`.
 */
export function assertUnitError(fn: () => unknown, option: string, why: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UnitOptionError, `not a UnitOptionError: ${err}`);
    assert.ok(err instanceof AppRunError);
    assert.equal(err.code, "ERR_UNIT_OPTION");
    assert.equal(err.option, option, err.message);
    assert.ok(err.message.startsWith(`${option}: `), err.message);
    assert.match(err.message, why);
    return true;
  });
}

/** The user units of fixtures/notify_probe.ts on 127.0.0.1:`port`, as apprun renders them. */
export function probeUnits(
  name: string,
  port: number,
  extra: Partial<UnitSetOptions> = {},
): RenderedUnit[] {
  return renderUnits({
    name,
    scope: "user",
    listeners: [{ kind: "tcp", host: "127.0.0.1", port }],
    execStart: [DENO, "run", "--allow-all", `${FIXTURES}/notify_probe.ts`],
    workingDirectory: ROOT,
    bindReadOnlyPaths: BIND_ROOT,
    ...extra,
  });
}

/** What the probe checks of its sandbox (fixtures/notify_probe.ts `check(...)`). */
export const PROBE_CHECKS = [
  "command",
  "denoDir",
  "epoll",
  "memfd",
  "rlimit",
  "scmRights",
  "spawnPidfd",
];

/** Asserts that the probe ran every one of its checks and each said "ok". */
export function assertProbeChecks(answer: Record<string, unknown>): void {
  const checks = answer.checks as Record<string, string>;
  assert.deepEqual(Object.keys(checks).sort(), PROBE_CHECKS, "the probe's checks");
  for (const [name, result] of Object.entries(checks)) {
    assert.match(result, /^ok/, `${name} failed under the sandbox: ${result}`);
  }
}
