/**
 * The handoff state's budget, kept by the writer (issue 11, item 4; runtime/worker/
 * state_budget.ts), with real `apprun serve` processes at a scaled-down budget
 * (`--max-handoff-state 1M`, which both the old and the new process read): clients each holding
 * a large partial WebSocket message would make the state bigger than the next process reads,
 * and with it every carried connection would lose its state. The old process leaves out the
 * largest records until the state fits — that client alone gets close 1012 — and carries the
 * rest: the other partial messages complete in the new process, an idle WebSocket and an idle
 * keep-alive connection go on as if nothing happened.
 */
import assert from "node:assert/strict";
import { GET, RawClient } from "../_net.ts";
import { waitUntilRead } from "../_proc_net.ts";
import { clientFrame, closeOf, fixture, RawWs, superviseFixture } from "../sessions/_sessions.ts";
import { linesAt } from "./_util.ts";

const TEXT = 0x1;
const BINARY = 0x2;
const KIB = 1024;

/** A binary message of `bytes` whose first half is sent before the restart. */
function halfMessage(bytes: number) {
  const payload = new Uint8Array(bytes).map((_, i) => i & 0xff);
  const frame = clientFrame({ opcode: BINARY, payload });
  const cut = frame.byteLength - bytes / 2;
  return { payload, first: frame.subarray(0, cut), rest: frame.subarray(cut) };
}

Deno.test("a state over the budget: the largest partial message is closed 1012, the rest carried", async () => {
  await using sup = await superviseFixture(fixture("sessions_counter.ts"), {
    args: ["--max-handoff-state", "1M"],
  });
  // Halves of 500, 300, 250 and 10 KiB: about 1.04 MiB of partial messages in the state.
  const sizes = { big: 1000 * KIB, mid: 600 * KIB, low: 500 * KIB, small: 20 * KIB };
  const partial = new Map<string, { ws: RawWs; message: ReturnType<typeof halfMessage> }>();
  for (const [id, bytes] of Object.entries(sizes)) {
    const ws = await RawWs.open(sup.port, `/ws?id=${id}`);
    partial.set(id, { ws, message: halfMessage(bytes) });
  }
  using idle = await RawWs.open(sup.port, "/ws?id=idle");
  using http = await RawClient.connect(sup.port);
  try {
    await http.write(GET("/"));
    assert.equal((await http.readResponse()).body.trim(), String(sup.pid));
    for (const { ws, message } of partial.values()) await ws.write(message.first);
    await waitUntilRead([...[...partial.values()].map((p) => p.ws.raw), idle.raw, http]);

    const { pid } = await sup.restart();

    const big = partial.get("big")!.ws;
    assert.deepEqual(closeOf(await big.read()), { code: 1012, reason: "service restart" });
    assert.equal(await big.isClosedByServer(), true, "then FIN");
    for (const id of ["mid", "low", "small"]) {
      const { ws, message } = partial.get(id)!;
      await ws.write(message.rest);
      const echo = await ws.read();
      assert.equal(echo.opcode, BINARY, `${id}: the message completed in the new process`);
      assert.deepEqual(echo.payload, message.payload, `${id}: every byte, once`);
      await ws.write(clientFrame({ opcode: TEXT, payload: "who" }));
      assert.equal(await ws.readText(), `e ${pid} who`);
    }
    await idle.write(clientFrame({ opcode: TEXT, payload: "who" }));
    assert.equal(await idle.readText(), `e ${pid} who`, "an unrelated WebSocket goes on");
    await http.write(GET("/"));
    assert.equal((await http.readResponse()).body.trim(), String(pid), "so does keep-alive");

    const log = sup.proc.log;
    assert.match(log, /resumed 5 connections from generation 1\b/);
    const errors = linesAt(log, "error").map((l) => l.replace(/^generation \d+: /, ""));
    assert.equal(errors.length, 1, errors.join("\n"));
    assert.match(errors[0], /^handoff state of \d+ bytes is over the budget of 1048576 /);
    const warnings = linesAt(log, "warn").filter((l) => /not carried/.test(l));
    assert.equal(warnings.length, 1, `one session left out: ${warnings.join("\n")}`);
    assert.match(warnings[0], /WebSocket fd \d+ not carried: its record of about 5\d{5} bytes/);
  } finally {
    for (const { ws } of partial.values()) ws.close();
  }
});
