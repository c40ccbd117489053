/**
 * @module
 * The Autobahn TestSuite cases a socket-free parser can reproduce (sections 1–7 and 9),
 * numbered as there: each feeds the case's frames, chopped where the case chops them, and
 * checks the events an echo server would act on. The behaviours Autobahn grades on the wire
 * (echoes, close handshakes, timing) belong to the socket layer's tests.
 */
import assert from "node:assert/strict";
import { FrameParser, type FrameParserOptions } from "../../runtime/ws/parser.ts";
import {
  bytes,
  clientFrame,
  type ClientFrameOptions,
  concatBytes,
  plain,
  type PlainEvent,
  utf8,
} from "./_frames.ts";

const TEXT = 0x1, BINARY = 0x2, CONT = 0x0, CLOSE = 0x8, PING = 0x9, PONG = 0xa;

const frame = (options: ClientFrameOptions) => clientFrame(options);
const fail = (closeCode: number) => ({ kind: "fail", closeCode }) as const;

/** Events with failure messages dropped, since Autobahn grades only the close code. */
function graded(events: PlainEvent[]): unknown[] {
  return events.map((event) => event.kind === "fail" ? fail(event.closeCode) : event);
}

/** Feeds each piece in its own push, as a chopping test client does. */
function run(pieces: Uint8Array[], options?: FrameParserOptions): unknown[] {
  const parser = new FrameParser(options);
  return graded(plain(pieces.flatMap((piece) => parser.push(piece))));
}

/** Splits bytes into pieces of `size`. */
function chop(input: Uint8Array, size: number): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  for (let at = 0; at < input.length; at += size) pieces.push(input.subarray(at, at + size));
  return pieces;
}

Deno.test("Autobahn 1.1.x / 1.2.x: text and binary messages of boundary lengths", () => {
  for (const length of [0, 125, 126, 127, 128, 65535, 65536]) {
    const text = "*".repeat(length);
    assert.deepEqual(run([frame({ opcode: TEXT, payload: text })]), [{ kind: "text", data: text }]);
    const data = new Uint8Array(length).fill(0xfe);
    assert.deepEqual(run([frame({ opcode: BINARY, payload: data })]), [{ kind: "binary", data }]);
  }
  // 1.1.8: 65536 bytes chopped into 997-byte pieces.
  const text = "*".repeat(65536);
  assert.deepEqual(run(chop(frame({ opcode: TEXT, payload: text }), 997)), [
    { kind: "text", data: text },
  ]);
});

Deno.test("Autobahn 2.x: pings and pongs", () => {
  assert.deepEqual(run([frame({ opcode: PING })]), [{ kind: "ping", data: bytes() }]); // 2.1
  const hello = utf8("Hello, world!"); // 2.2
  assert.deepEqual(run([frame({ opcode: PING, payload: hello })]), [{ kind: "ping", data: hello }]);
  const max = new Uint8Array(125).fill(0xfe); // 2.4
  assert.deepEqual(run([frame({ opcode: PING, payload: max })]), [{ kind: "ping", data: max }]);
  assert.deepEqual(run([frame({ opcode: PING, payload: new Uint8Array(126) })]), [fail(1002)]); // 2.5
  assert.deepEqual(run(chop(frame({ opcode: PING, payload: max }), 1)), [ // 2.6
    { kind: "ping", data: max },
  ]);
  assert.deepEqual(run([frame({ opcode: PONG })]), [{ kind: "pong", data: bytes() }]); // 2.7
  const pings = Array.from({ length: 10 }, (_, i) => frame({ opcode: PING, payload: `ping ${i}` }));
  assert.equal(run(chop(concatBytes(...pings), 1)).length, 10); // 2.11
});

Deno.test("Autobahn 3.x: reserved bits fail with 1002 after earlier messages are delivered", () => {
  assert.deepEqual(run([frame({ opcode: TEXT, payload: "Hello", rsv: 1 })]), [fail(1002)]); // 3.1
  const after = concatBytes( // 3.2
    frame({ opcode: TEXT, payload: "small" }),
    frame({ opcode: TEXT, payload: "small", rsv: 2 }),
    frame({ opcode: PING }),
  );
  assert.deepEqual(run([after]), [{ kind: "text", data: "small" }, fail(1002)]);
  assert.deepEqual(run(chop(after, 1)), [{ kind: "text", data: "small" }, fail(1002)]); // 3.3
  for (const [opcode, rsv] of [[BINARY, 5], [PING, 6], [CLOSE, 7]]) { // 3.5–3.7
    assert.deepEqual(run([frame({ opcode, rsv })]), [fail(1002)]);
  }
});

Deno.test("Autobahn 4.x: reserved opcodes fail with 1002", () => {
  for (const opcode of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
    const input = concatBytes(
      frame({ opcode: TEXT, payload: "small" }),
      frame({ opcode, payload: "reserved" }),
      frame({ opcode: PING }),
    );
    assert.deepEqual(run([input]), [{ kind: "text", data: "small" }, fail(1002)]);
  }
});

Deno.test("Autobahn 5.x: fragmentation", () => {
  const ping = frame({ opcode: PING, payload: "ping" });
  // 5.1–5.2: fragmented control frames.
  assert.deepEqual(run([frame({ opcode: PING, payload: "frag1", fin: false })]), [fail(1002)]);
  assert.deepEqual(run([frame({ opcode: PONG, payload: "frag1", fin: false })]), [fail(1002)]);
  // 5.3–5.5: a text message in two fragments, whole or byte by byte.
  const two = concatBytes(
    frame({ opcode: TEXT, payload: "frag1", fin: false }),
    frame({ opcode: CONT, payload: "frag2" }),
  );
  assert.deepEqual(run([two]), [{ kind: "text", data: "frag1frag2" }]);
  assert.deepEqual(run(chop(two, 1)), [{ kind: "text", data: "frag1frag2" }]);
  // 5.6–5.8: a ping between the fragments.
  const withPing = concatBytes(
    frame({ opcode: TEXT, payload: "frag1", fin: false }),
    ping,
    frame({ opcode: CONT, payload: "frag2" }),
  );
  const expected = [{ kind: "ping", data: utf8("ping") }, { kind: "text", data: "frag1frag2" }];
  assert.deepEqual(run([withPing]), expected);
  assert.deepEqual(run(chop(withPing, 1)), expected);
  // 5.9–5.14: continuations with nothing to continue, final or not.
  for (const fin of [true, false]) {
    assert.deepEqual(run([frame({ opcode: CONT, payload: "x", fin }), two]), [fail(1002)]);
  }
  // 5.15: a continuation after the message ended.
  const extra = concatBytes(
    two,
    frame({ opcode: CONT, payload: "frag3", fin: false }),
    frame({ opcode: TEXT, payload: "frag4" }),
  );
  assert.deepEqual(run([extra]), [{ kind: "text", data: "frag1frag2" }, fail(1002)]);
  // 5.18: a new text frame inside a fragmented message.
  const nested = concatBytes(
    frame({ opcode: TEXT, payload: "fragment1", fin: false }),
    frame({ opcode: TEXT, payload: "fragment2" }),
  );
  assert.deepEqual(run([nested]), [fail(1002)]);
  // 5.19–5.20: five fragments with pings interleaved, whole and chopped.
  const five = concatBytes(
    frame({ opcode: TEXT, payload: "fragment1", fin: false }),
    frame({ opcode: CONT, payload: "fragment2", fin: false }),
    frame({ opcode: PING, payload: "pongme 1!" }),
    frame({ opcode: CONT, payload: "fragment3", fin: false }),
    frame({ opcode: CONT, payload: "fragment4", fin: false }),
    frame({ opcode: PING, payload: "pongme 2!" }),
    frame({ opcode: CONT, payload: "fragment5" }),
  );
  const fiveExpected = [
    { kind: "ping", data: utf8("pongme 1!") },
    { kind: "ping", data: utf8("pongme 2!") },
    { kind: "text", data: "fragment1fragment2fragment3fragment4fragment5" },
  ];
  assert.deepEqual(run([five]), fiveExpected);
  assert.deepEqual(run(chop(five, 1)), fiveExpected);
});

Deno.test("Autobahn 6.x: valid UTF-8 in any fragmentation", () => {
  const samples = ["κόσμε", "Hello-µ@ßöäüàá-UTF-8!!", "\u{10ffff}", "\ufeff", "\u0000"];
  for (const text of samples) {
    const data = utf8(text);
    // 6.2.3–6.2.4 and 6.5.x: one frame per byte, and the whole frame one byte at a time.
    const perByte = concatBytes(
      ...Array.from(data, (byte, i) =>
        frame({
          opcode: i === 0 ? TEXT : CONT,
          payload: bytes(byte),
          fin: i === data.length - 1,
        })),
    );
    assert.deepEqual(run([perByte]), [{ kind: "text", data: text }]);
    assert.deepEqual(run(chop(frame({ opcode: TEXT, payload: data }), 1)), [
      { kind: "text", data: text },
    ]);
  }
});

Deno.test("Autobahn 6.3–6.21: invalid UTF-8 fails with 1007", () => {
  const invalid = [
    concatBytes(utf8("κόσμε"), bytes(0xed, 0xa0, 0x80), utf8("edited")), // 6.3.1
    bytes(0xc0, 0x80), // overlong NUL
    bytes(0xf8, 0x88, 0x80, 0x80, 0x80), // 5-byte form
    bytes(0xed, 0xa0, 0x80, 0xed, 0xb0, 0x80), // surrogate pair in CESU-8
    bytes(0xef, 0xbf), // truncated
  ];
  for (const payload of invalid) {
    assert.deepEqual(run([frame({ opcode: TEXT, payload })]), [fail(1007)]);
  }
});

Deno.test("Autobahn 6.4.x: invalid UTF-8 fails fast, before the message ends", () => {
  // 6.4.1: three fragments; the second is invalid, the third must not be needed.
  const parser = new FrameParser();
  assert.deepEqual(parser.push(frame({ opcode: TEXT, payload: "κόσμε", fin: false })), []);
  const second = parser.push(
    frame({ opcode: CONT, payload: bytes(0xf4, 0x90, 0x80, 0x80), fin: false }),
  );
  assert.deepEqual(graded(plain(second)), [fail(1007)]);
  // 6.4.2: one frame, chopped; the payload's invalid byte fails it before the frame ends.
  const payload = concatBytes(utf8("κόσμε"), bytes(0xf4, 0x90, 0x80, 0x80), utf8("edited"));
  const whole = frame({ opcode: TEXT, payload });
  const header = 6;
  const validPart = header + utf8("κόσμε").length + 1; // up to and with 0xF4 (still possible)
  const chopped = new FrameParser();
  assert.deepEqual(chopped.push(whole.subarray(0, validPart)), []);
  assert.deepEqual(graded(plain(chopped.push(whole.subarray(validPart, validPart + 1)))), [
    fail(1007),
  ]);
});

Deno.test("Autobahn 7.x: close frames", () => {
  const closeFrame = (code: number, reason: Uint8Array = bytes()) =>
    frame({ opcode: CLOSE, payload: concatBytes(bytes(code >> 8, code & 0xff), reason) });
  // 7.1.2–7.1.4: nothing after a close counts.
  assert.deepEqual(
    run([closeFrame(1000), closeFrame(1000), frame({ opcode: PING }), frame({ opcode: TEXT })]),
    [{ kind: "close", code: 1000, reason: "" }],
  );
  // 7.1.5: a close inside a fragmented message ends it unfinished.
  assert.deepEqual(run([frame({ opcode: TEXT, payload: "frag", fin: false }), closeFrame(1000)]), [
    { kind: "close", code: 1000, reason: "" },
  ]);
  assert.deepEqual(run([frame({ opcode: CLOSE })]), [{ kind: "close", code: 1005, reason: "" }]); // 7.3.1
  assert.deepEqual(run([frame({ opcode: CLOSE, payload: bytes(0x03) })]), [fail(1002)]); // 7.3.2
  assert.deepEqual(run([closeFrame(1000, utf8("Hello World!"))]), [ // 7.3.4
    { kind: "close", code: 1000, reason: "Hello World!" },
  ]);
  assert.deepEqual(run([closeFrame(1000, utf8("*".repeat(123)))]), [ // 7.3.5
    { kind: "close", code: 1000, reason: "*".repeat(123) },
  ]);
  assert.deepEqual(run([closeFrame(1000, utf8("*".repeat(124)))]), [fail(1002)]); // 7.3.6
  const badReason = concatBytes(utf8("κόσμε"), bytes(0xed, 0xa0, 0x80), utf8("edited"));
  assert.deepEqual(run([closeFrame(1000, badReason)]), [fail(1007)]); // 7.5.1
  for (
    const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]
  ) {
    assert.deepEqual(run([closeFrame(code)]), [{ kind: "close", code, reason: "" }]); // 7.7.x
  }
  for (const code of [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999, 5000, 65535]) {
    assert.deepEqual(run([closeFrame(code)]), [fail(1002)], `code ${code}`); // 7.9.x, 7.13.x
  }
});

Deno.test("Autobahn 9.x: messages over the limit fail with 1009", () => {
  const options = { maxMessageSize: 64 * 1024 };
  const big = new Uint8Array(64 * 1024 + 1);
  assert.deepEqual(run([frame({ opcode: BINARY, payload: big })], options), [fail(1009)]);
  // In fragments of 4 KiB: the seventeenth fragment header crosses the limit.
  const fragments = chop(big, 4096).map((payload, i, all) =>
    frame({ opcode: i === 0 ? BINARY : CONT, payload, fin: i === all.length - 1 })
  );
  assert.deepEqual(run(fragments, options), [fail(1009)]);
  assert.deepEqual(run(fragments.slice(0, 16).concat(frame({ opcode: CONT })), options), [
    { kind: "binary", data: big.subarray(0, 64 * 1024) },
  ]);
});
