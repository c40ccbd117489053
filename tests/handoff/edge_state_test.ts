/**
 * A bad handoff, under the embedded supervisor and a real systemd 252: the old process leaves a
 * corrupt state, a state of a future format version, a state larger than the new process reads
 * (`--max-handoff-state 1M`), an empty (truncated) bundle, or stores no bundle at all. The old
 * process is tests/fixtures/planter.ts, the service's first process (planted_app.sh): it accepts
 * the clients' connections, reads what they send, and at SIGTERM stores the bundle it was asked
 * to spoil — built with runtime/handoff's own writer — as apprun's handoff stores one; from the
 * restart on, apprun serves. In every case the new process starts, serves new connections and
 * leaves the store empty. What happens to the carried connections:
 *
 * - corrupt, foreign-version or oversized state: the fds still arrive, so they are served as
 *   plain HTTP (idle keep-alive connections keep working); the bytes the old process had read
 *   are in the rejected state, so a request whose head was split across the restart loses its
 *   first part and gets `400` + close. One error line names the problem.
 * - an empty bundle or none: the connection fds were only in the real bundle, which died with
 *   the old process, so every carried connection is closed (FIN, no answer; idle clients lose
 *   nothing they sent). An empty bundle gets one error line; a missing one cannot be seen by
 *   the new process at all (the manager keeps no record of what it did not store), so no line
 *   names it: the clients' EOF is the only trace.
 */
import assert from "node:assert/strict";
import { endingOf, RawClient } from "../_net.ts";
import { waitUntilRead } from "../_proc_net.ts";
import { waitUntil } from "../_poll.ts";
import {
  type App,
  type AppOptions,
  ask,
  linesAt,
  type Plant,
  readAnswer,
  testUnderBoth,
} from "./_util.ts";

/** One idle keep-alive client and one with half a head, through a restart from the planter. */
async function restartFromPlant(app: App) {
  const idle = await RawClient.connect(app.port);
  const split = await RawClient.connect(app.port);
  const oldPid = await app.pid();
  await split.write("GET /r?id=split HTTP/1.1\r\nHo");
  await waitUntilRead([idle, split]); // read by the old process: these bytes travel in the state
  const newPid = await app.restart();
  assert.notEqual(newPid, oldPid);
  using fresh = await RawClient.connect(app.port);
  assert.equal((await ask(fresh, "fresh")).pid, newPid, "new connections are served");
  await waitUntil(async () => await app.storedCount() === 0, "the store to be emptied");
  const log = await app.log();
  assert.match(log, new RegExp(`planter ${oldPid}: \\w[\\w-]+ with 2 connections`));
  return { idle, split, newPid, log };
}

function stateRejected(plant: Plant, problem: RegExp, opts: AppOptions = {}) {
  testUnderBoth(`${plant}: carried connections are served as plain HTTP`, async (app) => {
    const { idle, split, newPid, log } = await restartFromPlant(app);
    using _idle = idle, _split = split;
    const a = await ask(idle, "idle");
    assert.deepEqual([a.id, a.pid], ["idle", newPid], "the idle connection keeps working");
    await split.write("st: t\r\n\r\n");
    const lost = await readAnswer(split);
    assert.equal(lost.status, 400, "the head's first part was lost with the state");
    assert.equal(await split.waitForClose(3000), true);
    const errors = linesAt(log, "error");
    assert.equal(errors.length, 1, errors.join("\n"));
    assert.match(
      errors[0],
      /^handoff state of generation 1 rejected \(.+\): serving its 2 connections as plain HTTP$/,
    );
    assert.match(errors[0], problem);
    console.log(`${plant}: ${errors[0]}`);
  }, { ...opts, plant });
}

stateRejected("corrupt-state", /checksum/i);
stateRejected("future-version", /version 99/);
// A state the old process could write (its budget was larger) but the new one does not read.
stateRejected("oversize-state", /of \d+ bytes is more than 1048576: not read/, {
  args: ["--max-handoff-state", "1M"],
  env: { PLANT_APP_BYTES: String(2 << 20) },
});

function bundleLost(plant: Plant, line: RegExp | null) {
  testUnderBoth(
    `${plant}: the new process starts clean; carried connections are closed`,
    async (app) => {
      const { idle, split, log } = await restartFromPlant(app);
      assert.equal(await endingOf(idle.conn), "eof", "idle: closed without an answer");
      assert.equal(await endingOf(split.conn), "eof", "split: closed without an answer");
      idle.close();
      split.close();
      const errors = linesAt(log, "error");
      assert.deepEqual(errors.filter((l) => !line?.test(l)), [], "no other error");
      assert.equal(errors.length, line ? 1 : 0, errors.join("\n"));
      assert.doesNotMatch(log, /resumed [1-9]\d* connections/);
    },
    { plant },
  );
}

bundleLost(
  "empty-bundle",
  /^handoff bundle apprun-bundle-1 unreadable, starting without it: .*it is empty$/,
);
bundleLost("missing-bundle", null);
