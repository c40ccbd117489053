/**
 * Clients and strangers around a restart, under the embedded supervisor and a real systemd 252:
 * clients that close (FIN or RST) while the old process hands off cost nothing (no error, the
 * new process holds exactly the survivors' connections, and the survivors go on); fds in the
 * store that apprun did not put there (or an older bundle) are closed by the new process and
 * removed from the store, whose count is 0 again after each resume; a client that half-closes
 * after its request during the handoff is answered by the new process and then closed, and a
 * client that connects during it waits in the backlog and is served by the new process; 1000
 * idle connections (four SCM_RIGHTS batches of ≤ 253 fds in the bundle) are all carried.
 */
import assert from "node:assert/strict";
import { endingOf, GET, RawClient } from "../_net.ts";
import { heldConnections, waitUntilAnswered, waitUntilRead } from "../_proc_net.ts";
import { waitUntil } from "../_poll.ts";
import { ask, clientPort, linesAt, readAnswer, testUnderBoth, waitForLines } from "./_util.ts";

testUnderBoth(
  "clients that close during the handoff leave nothing open; the rest go on",
  async (app) => {
    const idle = await Promise.all(Array.from({ length: 20 }, () => RawClient.connect(app.port)));
    const holder = await RawClient.connect(app.port);
    const partial = await RawClient.connect(app.port);
    const all = [...idle, holder, partial];
    try {
      const oldPid = (await ask(holder, "h")).pid;
      for (const [i, c] of idle.entries()) assert.equal((await ask(c, `i${i}`)).pid, oldPid);
      await partial.write("GET /r?id=never HTTP/1.1\r\nHo");
      // Five leavers will not have read their last answer: closing, they send RST, not FIN.
      for (const c of idle.slice(0, 5)) await c.write(GET("/r?id=unread"));
      // A slow request keeps the old process in its handoff while clients leave.
      await holder.write(GET("/slow?ms=800&id=slow"));
      await waitUntilAnswered(idle.slice(0, 5)); // their answers wait, unread, on our side
      await waitUntilRead([holder, partial]);
      const restarting = app.restart();
      await waitForLines(app, /SIGTERM: handing off/g);
      const leaving = [...idle.slice(0, 10), partial]; // 5 RST, 6 FIN (one mid-head)
      for (const c of leaving) c.close();
      const staying = [...idle.slice(10), holder];
      const slow = await readAnswer(holder);
      assert.deepEqual([slow.id, slow.pid], ["slow", oldPid]);
      const newPid = await restarting;
      const survivors = staying.map(clientPort).sort((a, b) => a - b);
      const isOnlySurvivors = () =>
        JSON.stringify(heldConnections(newPid, app.port)) === JSON.stringify(survivors);
      await waitUntil(
        isOnlySurvivors,
        () => `new pid to hold only ${survivors}; it holds ${heldConnections(newPid, app.port)}`,
        { timeoutMs: 3000 },
      );
      for (const [i, c] of staying.entries()) {
        const a = await ask(c, `after${i}`);
        assert.deepEqual([a.id, a.pid], [`after${i}`, newPid]);
      }
      for (const c of staying) c.close();
      await waitUntil(
        () => heldConnections(newPid, app.port).length === 0,
        () => `every connection let go; still held: ${heldConnections(newPid, app.port)}`,
        { timeoutMs: 3000 },
      );
      const log = await app.log();
      assert.deepEqual(linesAt(log, "error"), []);
      assert.deepEqual(linesAt(log, "warn"), []);
      // The leavers were taken out (idle) before they left: carried, then closed on their EOF
      // or reset.
      assert.match(log, /resumed 22 connections from generation 1\b/);
    } finally {
      for (const c of all) c.close();
    }
  },
);

testUnderBoth("stored fds apprun does not recognise are closed and removed", async (app) => {
  using witness = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const witnessPort = (witness.addr as Deno.NetAddr).port;
  // "stored" is systemd's name for an unnamed fd; "apprun-bundle-0" is older than any bundle.
  const names = ["stored", "apprun-stray", "apprun-bundle-0"];
  const strays: Deno.Conn[] = [];
  try {
    using c = await RawClient.connect(app.port);
    for (const name of names) {
      await c.write(GET(`/stray?port=${witnessPort}&name=${name}`));
      const res = await c.readResponse();
      assert.equal(res.status, 200, res.body);
      strays.push(await witness.accept());
    }
    assert.equal(await app.storedCount(), names.length);
    const oldPid = (await ask(c, "before")).pid;
    const newPid = await app.restart();
    assert.notEqual(newPid, oldPid);
    // EOF on our side: the new process closed its copy and the store let go of its own.
    for (const [i, s] of strays.entries()) {
      assert.equal(await endingOf(s), "eof", `"${names[i]}" still open`);
    }
    await waitUntil(async () => await app.storedCount() === 0, "the store to be emptied");
    const log = await app.log();
    for (const name of names) {
      const line = `closing stored fds named "${name}": not ours, or from an older handoff`;
      assert.equal(linesAt(log, "warn").filter((l) => l === line).length, 1, line);
    }
    // The carried connection and a new one are served; the next restart is clean too.
    assert.equal((await ask(c, "after")).pid, newPid);
    const third = await app.restart();
    assert.equal((await ask(c, "third")).pid, third);
    assert.equal(await app.storedCount(), 0);
  } finally {
    for (const s of strays) {
      try {
        s.close();
      } catch {
        // endingOf closed it
      }
    }
  }
}, { fixture: "handoff_stray.ts" });

// Regression: a connected socket the app stored under a name of its own ("foo") was taken for a
// socket unit's fd of the wrong kind: every later start refused it and exited 1, the bundle
// stayed in the store and its connections hung (no FIN) until the manager gave up.
testUnderBoth(
  "a stray the app stored under its own name does not stop the next start",
  async (app) => {
    using witness = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    using c = await RawClient.connect(app.port);
    await c.write(GET(`/stray?port=${(witness.addr as Deno.NetAddr).port}&name=foo`));
    assert.equal((await c.readResponse()).status, 200);
    const stray = await witness.accept();
    const oldPid = (await ask(c, "before")).pid;
    const newPid = await app.restart();
    assert.notEqual(newPid, oldPid);
    assert.deepEqual([(await ask(c, "after")).pid], [newPid], "the carried connection goes on");
    assert.equal(await endingOf(stray), "eof", `"foo" still open`);
    await waitUntil(async () => await app.storedCount() === 0, "the store to be emptied");
    const line = `closing stored fds named "foo": not ours, or from an older handoff`;
    assert.ok(linesAt(await app.log(), "warn").includes(line), line);
  },
  { fixture: "handoff_stray.ts" },
);

testUnderBoth(
  "half-closed clients and new connections during the handoff are answered by the new process",
  async (app) => {
    using holder = await RawClient.connect(app.port);
    using whole = await RawClient.connect(app.port);
    using split = await RawClient.connect(app.port);
    const oldPid = (await ask(holder, "h")).pid;
    for (const c of [whole, split]) assert.equal((await ask(c, "0")).pid, oldPid);
    await split.write("GET /r?id=split HTTP/1.1\r\nHo");
    await holder.write(GET("/slow?ms=500&id=slow"));
    await waitUntilRead([split, holder]);
    const restarting = app.restart();
    await waitForLines(app, /SIGTERM: handing off/g);
    // While the old process drains: a whole request then FIN; the rest of a head then FIN; and
    // a new connection, which waits in the listener's backlog.
    await whole.write(GET("/r?id=whole"));
    await (whole.conn as Deno.TcpConn).closeWrite();
    await split.write("st: t\r\n\r\n");
    await (split.conn as Deno.TcpConn).closeWrite();
    using fresh = await RawClient.connect(app.port);
    await fresh.write(GET("/r?id=fresh"));
    assert.equal((await readAnswer(holder)).pid, oldPid);
    const newPid = await restarting;
    for (const [c, id] of [[whole, "whole"], [split, "split"], [fresh, "fresh"]] as const) {
      const a = await readAnswer(c);
      assert.deepEqual([a.status, a.id, a.pid], [200, id, newPid]);
    }
    assert.equal(
      await whole.waitForClose(3000),
      true,
      "closed after answering a half-closed client",
    );
    assert.equal(await split.waitForClose(3000), true);
    assert.equal((await ask(fresh, "again")).pid, newPid, "the new connection stays open");
  },
);

testUnderBoth(
  "1000 idle connections, four SCM_RIGHTS batches in the bundle, are all carried",
  async (app) => {
    const clients: RawClient[] = [];
    try {
      for (let i = 0; i < 1000; i++) clients.push(await RawClient.connect(app.port));
      const oldPid = (await ask(clients[0], "a")).pid;
      await Promise.all(clients.map((c, i) => ask(c, `a${i}`)));
      const newPid = await app.restart();
      assert.notEqual(newPid, oldPid);
      const answers = await Promise.all(clients.map((c, i) => ask(c, `b${i}`)));
      assert.deepEqual(answers.filter((a, i) => a.id !== `b${i}` || a.pid !== newPid), []);
      assert.match(await app.log(), /resumed 1000 connections from generation 1\b/);
    } finally {
      for (const c of clients) c.close();
    }
  },
);
