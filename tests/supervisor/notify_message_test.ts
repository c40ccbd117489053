/**
 * The socket-free parts: splitting a notify datagram as systemd 252 does (checked against a
 * real systemd 252 for the backslash and empty-name cases), FDNAME= validity, ERRNO= and
 * EXTEND_TIMEOUT_USEC= values, the start limiter's window, and the worker state table.
 */
import assert from "node:assert/strict";
import {
  decodeStatus,
  findTag,
  isValidFdName,
  parseErrno,
  parseUsec,
  splitNotifyMessage,
} from "../../runtime/supervisor/notify_message.ts";
import { StartLimiter } from "../../runtime/supervisor/timers.ts";
import { hasProcess, WORKER_MOVES } from "../../runtime/supervisor/worker_state.ts";

const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const split = (s: string) => splitNotifyMessage(bytes(s));

Deno.test("splitNotifyMessage() splits on \\n and \\r and drops empty lines", () => {
  assert.deepEqual(split("READY=1\nSTATUS=ok\n"), { tags: ["READY=1", "STATUS=ok"] });
  assert.deepEqual(split("\n\nREADY=1\r\n\r\nSTATUS=a b \n"), { tags: ["READY=1", "STATUS=a b "] });
  assert.deepEqual(split(""), { tags: [] });
  assert.deepEqual(split("READY=1\0"), { tags: ["READY=1"] }, "one trailing NUL is allowed");
});

Deno.test("splitNotifyMessage() takes the byte after a backslash literally", () => {
  assert.deepEqual(split("STATUS=a\\b\\\\c"), { tags: ["STATUS=ab\\c"] });
  assert.deepEqual(split("STATUS=one\\\ntwo\nREADY=1"), { tags: ["STATUS=one\ntwo", "READY=1"] });
  assert.deepEqual(split("READY=1\\"), { refused: "it ends with a lone backslash" });
});

Deno.test("splitNotifyMessage() refuses NUL bytes and datagrams over 4096 bytes", () => {
  assert.deepEqual(split("READY=1\0STATUS=x"), { refused: "it has embedded NUL bytes" });
  assert.deepEqual(split("STATUS=" + "x".repeat(4089)), { tags: ["STATUS=" + "x".repeat(4089)] });
  assert.match(
    (splitNotifyMessage(new Uint8Array(4097).fill(0x41)) as { refused: string }).refused,
    /exceeds the maximum size \(4096 bytes\)/,
  );
});

Deno.test("findTag() takes the first line with the prefix", () => {
  const tags = ["FDNAME=a", "FDSTORE=1", "FDNAME=b"];
  assert.equal(findTag(tags, "FDNAME="), "a");
  assert.equal(findTag(tags, "STATUS="), undefined);
});

Deno.test("isValidFdName() is fdname_is_valid(): ≤ 255 printable ASCII, no ':', empty allowed", () => {
  assert.equal(isValidFdName(""), true);
  assert.equal(isValidFdName("apprun-bundle-12"), true);
  assert.equal(isValidFdName(" ~!"), true);
  assert.equal(isValidFdName("x".repeat(255)), true);
  assert.equal(isValidFdName("x".repeat(256)), false);
  assert.equal(isValidFdName("a:b"), false);
  assert.equal(isValidFdName("tab\there"), false);
  assert.equal(isValidFdName("del\x7f"), false);
  assert.equal(isValidFdName("caf\xe9"), false);
});

Deno.test("parseUsec(), parseErrno(), decodeStatus()", () => {
  assert.equal(parseUsec("1500000"), 1_500_000);
  assert.equal(parseUsec("-1"), null);
  assert.equal(parseUsec("1e6"), null);
  assert.equal(parseUsec("18446744073709551615"), Number.MAX_SAFE_INTEGER);
  assert.equal(parseUsec("18446744073709551616"), null);
  assert.equal(parseErrno("EPIPE"), 32);
  assert.equal(parseErrno("4095"), 4095);
  assert.equal(parseErrno("4096"), null);
  assert.equal(parseErrno("EWHAT"), null);
  assert.equal(decodeStatus("h\xc3\xa9"), "hé");
  assert.equal(decodeStatus("\xff"), null);
});

Deno.test("StartLimiter counts like ratelimit_below(): burst per window from its first start", () => {
  const limit = new StartLimiter(3, 10_000);
  assert.deepEqual([0, 1, 2, 3, 9_999].map((t) => limit.allow(t)), [
    true,
    true,
    true,
    false,
    false,
  ]);
  assert.equal(limit.allow(10_001), true, "a new window opens once the interval has passed");
  const off = new StartLimiter(0, 10_000);
  assert.ok([0, 0, 0, 0, 0, 0, 0].every((t) => off.allow(t)));
});

Deno.test("WORKER_MOVES spawns (→ starting) only from states without a process", () => {
  for (const [from, moves] of Object.entries(WORKER_MOVES)) {
    if (!moves.includes("starting")) continue;
    const isAfterExit = from === "stopping" || from === "killing" || from === "reloading";
    // stopping/killing reach `starting` only through the exit handler, after the reap;
    // reloading, when the main process exited during the reload and the control process ended.
    assert.ok(!hasProcess(from as never) || isAfterExit, `${from} → starting`);
  }
  assert.deepEqual(WORKER_MOVES.stopped, []);
  assert.deepEqual(WORKER_MOVES.failed, []);
});
