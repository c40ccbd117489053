/**
 * @module
 * Shared bits of the units/ tests: repo paths, free ports, one-line socket reads, and the
 * check that a call throws apprun's ERR_UNIT_OPTION naming the right option.
 */
import assert from "node:assert/strict";
import { AppRunError } from "../../runtime/errors.ts";
import {
  type Listener,
  renderServiceUnit,
  renderSocketUnit,
  type ServiceUnitOptions,
  type SocketUnitOptions,
  UnitOptionError,
} from "../../units/mod.ts";

/** The repo root, absolute. */
export const REPO = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
/** The pinned Deno. */
export const DENO = `${REPO}/node_modules/.bin/deno`;
/** A checkout under /tmp (a CI clone) is hidden by PrivateTmp=: units that run it bind it back. */
export const BIND_REPO: string[] = /^\/(var\/)?tmp\//.test(REPO) ? [REPO] : [];
export const FIXTURES = `${REPO}/tests/units/fixtures`;
export const GOLDEN = `${REPO}/tests/units/golden`;

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

/** A port nobody listens on right now (bound, then released). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = l.addr as Deno.NetAddr;
  l.close();
  return port;
}

/** Connects, reads until the first newline or EOF, closes. */
export async function readLineFrom(
  addr: Deno.ConnectOptions | Deno.UnixConnectOptions,
): Promise<string> {
  const conn = await Deno.connect(addr as Deno.ConnectOptions);
  try {
    const bytes: number[] = [];
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      bytes.push(...buf.subarray(0, n));
      if (buf.subarray(0, n).includes(0x0a)) break;
    }
    return new TextDecoder().decode(new Uint8Array(bytes));
  } finally {
    conn.close();
  }
}

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
