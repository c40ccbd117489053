/**
 * SIGKILL around a handoff, under the embedded supervisor and a real systemd 252. The next
 * process always starts and serves; what the clients lose depends on where the old one died.
 * The app (tests/fixtures/handoff_crash.ts) marks the moment its `onAppHandoff` hook runs in
 * its first handoff: every connection taken out, the bundle not yet written or stored.
 *
 * - before `FDSTORE=1`: the app SIGKILLs itself in that hook, as a crashing app would. The
 *   connections existed only inside the dead process, so every one dies with it. Clients the
 *   old process had read everything from see a FIN; a client whose bytes were still unread in
 *   the kernel (sent during the drain) sees a reset, because Linux answers the close of a
 *   socket with unread data with RST.
 * - after `FDSTORE=1`, before `BARRIER=1`: the manager is frozen (SIGSTOP) once the old process
 *   began its handoff, so the old process stores its bundle and then waits for the barrier's
 *   answer (5 s at most); a second after the hook ran it is SIGKILLed in that wait, and the
 *   manager thawed. The datagram with the bundle was already queued on the manager's notify
 *   socket (the kernel holds the fds it carries), and the manager reads it before it handles
 *   the death: everything is carried.
 * - a plain SIGKILL while serving: apprun stores connections only when it hands off (storing
 *   each at accept costs the manager O(N) per accept: docs/design.md), so all of them die
 *   (FIN); the manager starts the next process (the supervisor restarts on failure; under
 *   systemd the socket unit starts it on the next connection).
 */
import assert from "node:assert/strict";
import { endingOf, GET, RawClient } from "../_net.ts";
import { exists } from "../_proc.ts";
import { waitUntilRead } from "../_proc_net.ts";
import { sleep, waitUntil } from "../_poll.ts";
import { type App, ask, readAnswer, testUnderBoth, waitForLines } from "./_util.ts";

/** The fixture whose first handoff crashes, at `at` (its module comment). */
const crashing = (at: "before-store" | "after-store") => ({
  fixture: "handoff_crash.ts",
  env: { CRASH_AT: at },
});

/** The kill between `FDSTORE=1` and the barrier's answer, with the manager frozen meanwhile. */
const killAfterStore = {
  freeze(app: App) {
    Deno.kill(app.managerPid, "SIGSTOP");
  },
  async kill(app: App, oldPid: number) {
    try {
      // The hook ran: the bundle is written and stored within milliseconds, then the barrier
      // waits (for 5 s, unanswered): a second in, the old process is in that wait.
      await waitUntil(() => exists(`${app.dir}/crashed`), "the app's onAppHandoff");
      await sleep(1000);
      Deno.kill(oldPid, "SIGKILL");
    } finally {
      Deno.kill(app.managerPid, "SIGCONT");
    }
  },
};

/**
 * The clients every mid-handoff kill sees, set up across one restart. `kill` (if given)
 * freezes the manager once the old process began its handoff and kills the old process.
 */
async function killMidHandoff(app: App, kill?: typeof killAfterStore) {
  const idle = await RawClient.connect(app.port);
  const split = await RawClient.connect(app.port);
  const slow = await RawClient.connect(app.port);
  const late = await RawClient.connect(app.port);
  const oldPid = (await ask(idle, "idle0")).pid;
  for (const c of [split, slow, late]) assert.equal((await ask(c, "0")).pid, oldPid);
  await split.write("GET /r?id=split HTTP/1.1\r\nHo");
  await slow.write(GET("/slow?ms=600&id=slow"));
  await waitUntilRead([split, slow]); // half a head in the parser, a request in the handler
  const restarting = app.restart();
  await waitForLines(app, /SIGTERM: handing off/g);
  kill?.freeze(app);
  // Sent while the old process drains: it no longer reads, the bytes wait in the kernel.
  await late.write(GET("/r?id=late"));
  const s = await readAnswer(slow);
  assert.deepEqual([s.id, s.pid], ["slow", oldPid], "the request in flight finished first");
  await kill?.kill(app, oldPid);
  const newPid = await restarting;
  assert.notEqual(newPid, oldPid);
  using fresh = await RawClient.connect(app.port);
  assert.equal((await ask(fresh, "fresh")).pid, newPid, "the next process serves");
  await waitUntil(async () => await app.storedCount() === 0, "the store to be emptied");
  return { idle, split, slow, late, oldPid, newPid };
}

testUnderBoth("kill-before-store: the next process serves; every connection died", async (app) => {
  const { idle, split, slow, late } = await killMidHandoff(app);
  assert.equal(await endingOf(idle.conn), "eof");
  assert.equal(await endingOf(split.conn), "eof");
  assert.equal(await endingOf(slow.conn), "eof");
  assert.equal(await endingOf(late.conn), "reset", "unread bytes: closed with RST");
  for (const c of [idle, split, slow, late]) c.close();
  const log = await app.log();
  assert.doesNotMatch(log, /handed off/, "the old process never finished its handoff");
  assert.doesNotMatch(log, /resumed [1-9]/);
  if (app.manager === "supervisor") assert.match(log, /generation 1: pid \d+ .*SIGKILL/);
}, crashing("before-store"));

testUnderBoth(
  "kill-after-store: the bundle was stored, every connection is carried",
  async (app) => {
    const { idle, split, slow, late, newPid } = await killMidHandoff(app, killAfterStore);
    try {
      const l = await readAnswer(late);
      assert.deepEqual([l.id, l.pid], ["late", newPid], "bytes sent during the drain arrived");
      await split.write("st: t\r\n\r\n");
      const s = await readAnswer(split);
      assert.deepEqual([s.status, s.id, s.pid], [200, "split", newPid]);
      for (const c of [idle, slow]) assert.equal((await ask(c, "after")).pid, newPid);
      const log = await app.log();
      assert.doesNotMatch(log, /handed off|BARRIER=1 not acknowledged/, "died in its barrier");
      assert.match(log, /resumed 4 connections from generation 1\b/);
    } finally {
      for (const c of [idle, split, slow, late]) c.close();
    }
  },
  crashing("after-store"),
);

testUnderBoth("a plain SIGKILL loses the connections; the next process serves", async (app) => {
  using idle = await RawClient.connect(app.port);
  using busy = await RawClient.connect(app.port);
  const oldPid = (await ask(idle, "idle")).pid;
  await busy.write(GET("/slow?ms=5000&id=busy"));
  await waitUntilRead([busy]); // in the handler: no unread bytes to turn the close into RST
  Deno.kill(oldPid, "SIGKILL");
  assert.equal(await endingOf(idle.conn), "eof", "idle: FIN from the kernel");
  assert.equal(await endingOf(busy.conn), "eof", "in flight: no answer, FIN");
  using fresh = await RawClient.connect(app.port);
  const a = await ask(fresh, "fresh");
  assert.equal(a.status, 200);
  assert.notEqual(a.pid, oldPid);
  assert.equal(await app.pid(), a.pid);
  assert.equal(await app.storedCount(), 0, "nothing was stored");
});
