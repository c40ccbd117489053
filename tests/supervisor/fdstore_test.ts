/**
 * The fdstore as systemd keeps it: a stored TCP connection survives a restart and the next
 * worker answers on it, FDSTOREREMOVE=1, dedupe, FileDescriptorStoreMax= overflow, hangup
 * watching (FDPOLL=), BARRIER=1, invalid names, and fds on messages that do not store them.
 */
import assert from "node:assert/strict";
import { fdSnapshot, LineClient, newFds, pyWorker, withSupervisor } from "./_harness.ts";
import { waitUntilAnswered } from "../_proc_net.ts";
import { sleep, waitUntil } from "../_poll.ts";

const store = (name: string, extra: string[] = []) => ["FDSTORE=1", `FDNAME=${name}`, ...extra];

Deno.test("a stored TCP connection survives a restart; the next worker answers on it", async () => {
  await withSupervisor({}, async ({ sup, port }) => {
    const first = await sup.start();
    const c = await LineClient.connect(port);
    await c.request({ cmd: "notify", lines: store("conn-1", ["FDPOLL=0"]), attach: "conn" });
    await c.request({ cmd: "barrier" });
    assert.deepEqual(sup.status().storedFds, [{ name: "conn-1", count: 1 }]);
    const next = await sup.restart();
    assert.notEqual(next.pid, first.pid);
    assert.equal(next.generation, 2);
    assert.ok(next.handoffMs !== null && next.handoffMs >= 0);
    // Same client socket, new process behind it.
    const info = await c.request({ cmd: "info" });
    assert.equal(info.pid, next.pid);
    assert.equal(info.conn, "conn-1");
    assert.equal(info.env.LISTEN_FDS, "2");
    assert.equal(info.env.LISTEN_FDNAMES, "http:conn-1");
    assert.deepEqual(sup.status().storedFds, [{ name: "conn-1", count: 1 }]);
    await c.close();
  });
});

Deno.test("FDSTOREREMOVE=1 closes the stored copy: then the worker's close() ends the connection", async () => {
  await withSupervisor({}, async ({ sup, port }) => {
    await sup.start();
    const a = await LineClient.connect(port);
    const b = await LineClient.connect(port);
    await b.request({ cmd: "notify", lines: store("b", ["FDPOLL=0"]), attach: "conn" });
    await b.request({ cmd: "barrier" });
    // The trap (docs/design.md): the worker closes its copy, the stored one keeps the peer
    // waiting.
    await b.request({ cmd: "close" });
    assert.equal(await b.waitEof(300), false, "the peer saw EOF while a copy was stored");
    await a.request({ cmd: "notify", lines: ["FDSTOREREMOVE=1", "FDNAME=b"] });
    await a.request({ cmd: "barrier" });
    assert.deepEqual(sup.status().storedFds, []);
    assert.equal(await b.waitEof(2000), true, "the peer never saw EOF after FDSTOREREMOVE=1");
    await a.close();
    await b.close();
  });
});

Deno.test("an fd identical to a stored one is not stored twice (same fd, dup, other name)", async () => {
  await withSupervisor({}, async ({ sup, port }) => {
    await sup.start();
    const c = await LineClient.connect(port);
    await c.request({ cmd: "notify", lines: store("twice"), attach: "conn2" });
    await c.request({ cmd: "notify", lines: store("dup"), attach: "dup" });
    await c.request({ cmd: "notify", lines: store("again"), attach: "conn" });
    await c.request({ cmd: "barrier" });
    assert.deepEqual(sup.status().storedFds, [{ name: "twice", count: 1 }]);
    await c.close();
  });
});

Deno.test("past fdStoreMax the excess is closed, with a warning", async () => {
  const before = fdSnapshot();
  await withSupervisor({ fdStoreMax: 3 }, async ({ sup, port, log }) => {
    await sup.start();
    const c = await LineClient.connect(port);
    await c.request({ cmd: "notify", lines: store("p"), attach: "pipes", count: 5 });
    await c.request({ cmd: "barrier" });
    assert.deepEqual(sup.status().storedFds, [{ name: "p", count: 3 }]);
    assert.match(log.text, /more fds than fdStoreMax=3 .*closed the remaining 2 of "p"/);
    const pipes = newFds(before).filter((f) => f.includes("pipe:"));
    assert.equal(pipes.length, 3, `the store holds exactly 3 pipe fds: ${pipes}`);
    await c.close();
  });
});

Deno.test("a stored fd whose peer resets is dropped; FDPOLL=0 keeps it; a FIN keeps it", async () => {
  await withSupervisor({}, async ({ sup, port, log }) => {
    await sup.start();
    const polled = await LineClient.connect(port);
    const unpolled = await LineClient.connect(port);
    const finished = await LineClient.connect(port);
    await polled.request({ cmd: "notify", lines: store("polled"), attach: "conn" });
    await unpolled.request({ cmd: "notify", lines: store("kept", ["FDPOLL=0"]), attach: "conn" });
    await finished.request({ cmd: "notify", lines: store("fin"), attach: "conn" });
    await finished.request({ cmd: "barrier" });
    assert.equal(sup.status().storedFds.length, 3);
    // Leave a reply unread, then close: the kernel answers with RST (RFC 2525 §2.17).
    for (const c of [polled, unpolled]) {
      await c.send({ cmd: "info" });
      await waitUntilAnswered([c.raw]);
      c.close();
    }
    await finished.close(); // everything read: a FIN, no hangup on the stored end
    await waitUntil(() => sup.status().storedFds.length === 2, "the reset fd to be dropped");
    await sleep(100); // a window in which the other two must not be dropped
    assert.deepEqual(sup.status().storedFds, [
      { name: "fin", count: 1 },
      { name: "kept", count: 1 },
    ]);
    assert.match(log.text, /EPOLL(HUP|ERR) on stored fd "polled": dropped/);
  });
});

Deno.test("BARRIER=1 is answered once everything sent before it was processed", async () => {
  await withSupervisor({}, async ({ sup, port }) => {
    await sup.start();
    const c = await LineClient.connect(port);
    // Each reply means "sent", not "processed": the datagrams queue up in the notify socket.
    await c.request({ cmd: "notify", lines: store("b1"), attach: "pipes", count: 2 });
    await c.request({ cmd: "notify", lines: ["STATUS=before the barrier"] });
    await c.request({ cmd: "notify", lines: store("b2"), attach: "pipes", count: 1 });
    await c.request({ cmd: "notify", lines: store("b1") });
    const barrier = await c.request({ cmd: "barrier" });
    assert.equal(barrier.ok, true);
    // Nothing to wait for: the barrier's answer means all of it is in.
    assert.deepEqual(sup.status().storedFds, [{ name: "b2", count: 1 }, { name: "b1", count: 2 }]);
    assert.equal(sup.status().status, "before the barrier");
    await c.close();
  });
});

Deno.test("BARRIER=1 with other lines drops the whole message (READY=1 is not seen)", async () => {
  await withSupervisor({ worker: pyWorker({ TW_START: "never" }) }, async ({ sup, port, log }) => {
    const started = sup.start();
    const c = await LineClient.connect(port);
    await c.request({ cmd: "notify", lines: ["READY=1", "BARRIER=1"], attach: "pipes" });
    await c.request({ cmd: "barrier" });
    assert.equal(sup.state, "starting");
    assert.match(log.text, /BARRIER=1 from pid \d+ came with other lines: all ignored/);
    await c.request({ cmd: "notify", lines: ["READY=1"] });
    await started;
    await c.close();
  });
});

Deno.test('an invalid FDNAME= on FDSTORE=1 stores the fds as "stored" (as systemd 252)', async () => {
  await withSupervisor({}, async ({ sup, port, log }) => {
    await sup.start();
    const c = await LineClient.connect(port);
    // FDPOLL=0: the write ends die with this worker, which would drop polled read ends.
    const keep = ["FDPOLL=0"];
    await c.request({ cmd: "notify", lines: store("bad:name", keep), attach: "pipes" });
    await c.request({ cmd: "notify", lines: store("", keep), attach: "pipes" });
    await c.request({ cmd: "notify", lines: store("x".repeat(256), keep), attach: "pipes" });
    await c.request({ cmd: "notify", lines: ["FDSTOREREMOVE=1", "FDNAME=a:b"] });
    await c.request({ cmd: "barrier" });
    assert.deepEqual(sup.status().storedFds, [
      { name: "stored", count: 2 },
      { name: "", count: 1 },
    ]);
    assert.equal(log.grep(/FDNAME=.* is invalid/).length, 2);
    assert.match(log.text, /FDSTOREREMOVE=1 without a valid FDNAME=: ignored/);
    // The next worker sees them in LISTEN_FDNAMES, newest first, after the listener.
    await sup.restart();
    const info = await c.request({ cmd: "info" }).catch(() => null);
    assert.equal(info, null, "the old worker's connection is gone");
    const d = await LineClient.connect(port);
    assert.equal((await d.request({ cmd: "info" })).env.LISTEN_FDNAMES, "http:stored::stored");
    await c.close();
    await d.close();
  });
});

Deno.test("fds on a message without FDSTORE=1 are closed", async () => {
  await withSupervisor({}, async ({ sup, port, log }) => {
    await sup.start();
    const before = fdSnapshot();
    const c = await LineClient.connect(port);
    await c.request({ cmd: "notify", lines: ["STATUS=with fds"], attach: "pipes", count: 2 });
    await c.request({
      cmd: "notify",
      lines: ["FDSTOREREMOVE=1", "FDSTORE=1", "FDNAME=x"],
      attach: "pipes",
    });
    await c.request({ cmd: "barrier" });
    assert.deepEqual(sup.status().storedFds, []);
    assert.equal(
      log.grep(/closed \d fd\(s\) from pid \d+: attached to a message that does not/).length,
      2,
    );
    await c.close();
    assert.deepEqual(newFds(before), []);
  });
});
