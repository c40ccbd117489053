/**
 * Issue 16, item 2, under a real systemd 252 (a private user manager): a SIGHUP to the service's
 * main process — the worker — no longer ends it with every connection: it logs how to reload
 * (`systemctl --user restart NAME.service`) and serves on; `apprun reload --name NAME --user`
 * is that restart, through the fdstore, and a keep-alive client is carried.
 */
import assert from "node:assert/strict";
import { isAvailable, startUserManager } from "../_systemd.ts";
import { RawClient } from "../_net.ts";
import { sleep } from "../_poll.ts";
import { installApp } from "../_systemd_app.ts";
import { apprun } from "./_supervised.ts";

const reason = isAvailable();
if (reason) console.log(`skip: real-systemd tests: ${reason}`);

/** GET /r?id=… on a kept connection: the pid that answered. */
async function pidOn(c: RawClient, id: string): Promise<string> {
  await c.write(`GET /r?id=${id} HTTP/1.1\r\nHost: t\r\n\r\n`);
  const r = await c.readResponse();
  assert.equal(r.status, 200);
  const [answer, pid] = r.body.split(" ");
  assert.equal(answer, id);
  return pid;
}

Deno.test({
  name: "systemd: SIGHUP to the worker is a line saying how to reload; apprun reload restarts",
  ignore: reason !== null,
  sanitizeResources: false,
  async fn() {
    await using m = await startUserManager();
    const app = await installApp(m, { name: "hup" });
    using kept = await RawClient.connect(app.port);
    const first = await pidOn(kept, "a");
    assert.equal(await m.show("hup.service", "MainPID"), first);
    Deno.kill(Number(first), "SIGHUP");
    await sleep(500);
    assert.equal(await pidOn(kept, "b"), first, "the same process, the same connection");
    assert.equal(await m.show("hup.service", "ActiveState"), "active");
    assert.match(
      await app.log(),
      /SIGHUP ignored \(it would drop every connection\): to reload, run `systemctl --user restart hup\.service` or `apprun reload --name hup --user`/,
    );
    const r = await apprun(["reload", "--name", "hup", "--user"], { ...m.env });
    assert.equal(r.code, 0, r.out);
    assert.match(
      r.out,
      /reloaded hup: pid \d+ → \d+ in \d+ ms \(systemd --user \(hup\.service\)\)/,
    );
    const next = await pidOn(kept, "c");
    assert.notEqual(next, first, "a new process on the kept connection");
    assert.equal(await m.show("hup.service", "MainPID"), next);
  },
});
