/**
 * Requests caught by a restart, each under the embedded supervisor and under a real systemd 252,
 * on both paths — cold (`restart`: the control socket's, `systemctl restart`) and warm
 * (`reload`: SIGHUP, `systemctl reload`): a head split across it is parsed on by the new process
 * from the bytes the old one read; an upload whose body spans it (Content-Length and
 * chunked), a slow request, and a large answer to a client that reads slowly are finished by
 * the old process, and the connection then goes on with the new one; requests pipelined while
 * the restart is under way all arrive, once each, in order.
 */
import assert from "node:assert/strict";
import { GET, RawClient } from "../_net.ts";
import { serverSendQueue, waitUntilAnswered, waitUntilRead } from "../_proc_net.ts";
import { sleep, waitUntil } from "../_poll.ts";
import { ask, type PathApp, readAnswer, testUnderAll, waitForLines } from "./_util.ts";

testUnderAll(
  "a request head split across the restart is answered once, by the new process",
  async (app) => {
    // Three split points: inside the request line, inside a header name, before the final CRLF.
    const heads = [
      "GET /r?id=s0 HT",
      "GET /r?id=s1 HTTP/1.1\r\nHo",
      "GET /r?id=s2 HTTP/1.1\r\nHost: t\r\n",
    ];
    const clients = await Promise.all(heads.map(() => RawClient.connect(app.port)));
    try {
      const oldPid = (await ask(clients[0], "first")).pid;
      await Promise.all(clients.map((c, i) => c.write(heads[i])));
      // The old process has read the first halves: they travel in the bundle.
      await waitUntilRead(clients);
      const newPid = await app.restart();
      assert.notEqual(newPid, oldPid);
      const rests = ["TP/1.1\r\nHost: t\r\n\r\n", "st: t\r\n\r\n", "\r\n"];
      await Promise.all(clients.map((c, i) => c.write(rests[i])));
      for (const [i, c] of clients.entries()) {
        const a = await readAnswer(c);
        assert.deepEqual([a.status, a.id, a.pid], [200, `s${i}`, newPid]);
        // The next answer is the next request's: nothing was answered twice.
        const next = await ask(c, `n${i}`);
        assert.deepEqual([next.id, next.pid], [`n${i}`, newPid]);
      }
    } finally {
      for (const c of clients) c.close();
    }
  },
);

/** Sends `parts` one every `gapMs` after the restart began; returns the answer. */
async function uploadAcross(app: PathApp, head: string, parts: string[], total: number) {
  using c = await RawClient.connect(app.port);
  const oldPid = (await ask(c, "before")).pid;
  const handoffsBefore = (await app.log()).match(app.handingOff)?.length ?? 0;
  await c.write(head + parts[0]);
  await waitUntilRead([c]); // the upload is in flight in the old process
  const restarting = app.restart();
  // The old process is handing off while most of the body is still to come.
  await waitForLines(app, app.handingOff, handoffsBefore + 1);
  for (const part of parts.slice(1)) {
    await sleep(60); // pacing: the body keeps coming over the handoff, not all at once
    await c.write(part);
  }
  const a = await readAnswer(c);
  assert.deepEqual([a.status, a.id, a.pid], [200, String(total), oldPid], "whole body, old pid");
  assert.notEqual(a.res.headers.get("connection"), "close");
  const newPid = await restarting;
  assert.notEqual(newPid, oldPid);
  const after = await ask(c, "after");
  assert.deepEqual([after.id, after.pid], ["after", newPid], "the connection went on");
}

testUnderAll(
  "an upload (Content-Length) spanning the restart is finished by the old process",
  async (app) => {
    const parts = Array.from({ length: 10 }, (_, i) => String(i).repeat(20_000));
    const head = `POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 200000\r\n\r\n`;
    await uploadAcross(app, head, parts, 200_000);
  },
);

testUnderAll(
  "a chunked upload spanning the restart is finished by the old process",
  async (app) => {
    const chunks = Array.from({ length: 10 }, (_, i) => `4e20\r\n${String(i).repeat(20_000)}\r\n`);
    chunks.push("0\r\n\r\n");
    const head = `POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n`;
    await uploadAcross(app, head, chunks, 200_000);
  },
);

testUnderAll(
  "a slow request in flight finishes in the old process, then the new one serves",
  async (app) => {
    using c = await RawClient.connect(app.port);
    const oldPid = (await ask(c, "before")).pid;
    const t0 = performance.now();
    await c.write(GET("/slow?ms=1500&id=slow"));
    await waitUntilRead([c]); // in the old process's handler
    const restarting = app.restart();
    const a = await readAnswer(c);
    assert.deepEqual([a.status, a.id, a.pid], [200, "slow", oldPid]);
    assert.ok(performance.now() - t0 >= 1500, "answered after its full 1.5 s");
    const newPid = await restarting;
    assert.notEqual(newPid, oldPid);
    const after = await ask(c, "after");
    assert.deepEqual([after.id, after.pid], ["after", newPid]);
  },
);

testUnderAll(
  "requests pipelined during the restart all arrive, once each, in order",
  async (app) => {
    const CLIENTS = 20;
    const clients = await Promise.all(
      Array.from({ length: CLIENTS }, () => RawClient.connect(app.port)),
    );
    try {
      const oldPid = (await ask(clients[0], "first")).pid;
      let isWriting = true;
      const sent = clients.map(() => 0);
      // Writers pipeline one request every ~10 ms per client, never waiting for answers.
      const writers = clients.map(async (c, i) => {
        while (isWriting) {
          await c.write(GET(`/r?id=${i}-${sent[i]++}`));
          await sleep(10); // pacing: one request every ~10 ms
        }
      });
      await waitUntilAnswered(clients); // the old process answered on every connection
      const sentBefore = [...sent];
      const newPid = await app.restart();
      const sentAtReady = [...sent];
      const during = sentAtReady.map((n, i) => n - sentBefore[i]);
      assert.ok(Math.min(...during) >= 3, `requests written during the restart: ${during}`);
      // Requests written after READY=1 can only reach the new process.
      await waitUntil(
        () => sent.every((n, i) => n >= sentAtReady[i] + 3),
        "three more requests from every client after READY=1",
      );
      isWriting = false;
      await Promise.all(writers);
      let oldAnswers = 0, newAnswers = 0;
      for (const [i, c] of clients.entries()) {
        const pids: number[] = [];
        for (let k = 0; k < sent[i]; k++) {
          const a = await readAnswer(c);
          assert.deepEqual(
            [a.status, a.id],
            [200, `${i}-${k}`],
            `client ${i}: answer ${k} in order`,
          );
          pids.push(a.pid);
        }
        const firstNew = pids.indexOf(newPid);
        assert.ok(firstNew > 0, `client ${i}: answered by both processes (${[...new Set(pids)]})`);
        assert.deepEqual(
          new Set(pids.slice(0, firstNew)),
          new Set([oldPid]),
          `client ${i}: old pid, then only the new one`,
        );
        assert.deepEqual(new Set(pids.slice(firstNew)), new Set([newPid]));
        oldAnswers += firstNew;
        newAnswers += pids.length - firstNew;
        // Nothing answered twice: the next answer is the next request's.
        assert.equal((await ask(c, "last")).id, "last");
      }
      console.log(
        `pipelined: ${oldAnswers} answered by the old process, ${newAnswers} by the new, ` +
          `${during.reduce((a, b) => a + b)} written between the restart and READY=1`,
      );
    } finally {
      for (const c of clients) c.close();
    }
  },
);

testUnderAll(
  "a large answer still being written at the restart is delivered whole by the old process",
  async (app) => {
    using c = await RawClient.connect(app.port);
    const oldPid = (await ask(c, "before")).pid;
    const BYTES = 8_000_000;
    await c.write(GET(`/big?bytes=${BYTES}&id=big`));
    // Not reading: once the answer has begun, most of it waits in the old process's queue.
    await waitUntilAnswered([c]);
    const restarting = app.restart();
    await waitForLines(app, app.handingOff);
    assert.ok(serverSendQueue(c) > 0, "the answer is still being written as the handoff starts");
    const res = await c.readResponse(20_000);
    assert.equal(res.body.length, BYTES + `\nbig ${oldPid}`.length);
    assert.ok(res.body.endsWith(`\nbig ${oldPid}`), "answered whole, by the old process");
    const newPid = await restarting;
    const after = await ask(c, "after");
    assert.deepEqual([after.id, after.pid], ["after", newPid]);
  },
  { fixture: "handoff_big.ts" },
);
