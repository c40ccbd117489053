/**
 * @module
 * Tests of FrameParser's rules (RFC 6455 §5 and §7), each with exact bytes: what a server
 * accepts, and which close code each violation fails with.
 */
import assert from "node:assert/strict";
import { FrameParser } from "../../runtime/ws/parser.ts";
import { WsProtocolError } from "../../runtime/ws/errors.ts";
import { AppRunError } from "../../runtime/errors.ts";
import { bytes, clientFrame, concatBytes, parse, type PlainEvent, utf8 } from "./_frames.ts";

const TEXT = 0x1, BINARY = 0x2, CONT = 0x0, CLOSE = 0x8, PING = 0x9, PONG = 0xa;

function failCode(events: PlainEvent[]): number | undefined {
  const last = events.at(-1);
  return last?.kind === "fail" ? last.closeCode : undefined;
}

Deno.test("FrameParser.push() reads the RFC 6455 §5.7 masked text and pong examples", () => {
  const hello = bytes(0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58);
  assert.deepEqual(parse(hello), [{ kind: "text", data: "Hello" }]);
  const pong = bytes(0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58);
  assert.deepEqual(parse(pong), [{ kind: "pong", data: utf8("Hello") }]);
});

Deno.test("FrameParser.push() reads 7-, 16- and 64-bit lengths", () => {
  for (const length of [0, 125, 126, 127, 65535, 65536, 70000]) {
    const payload = new Uint8Array(length).map((_, i) => i * 7);
    assert.deepEqual(parse(clientFrame({ opcode: BINARY, payload })), [
      { kind: "binary", data: payload },
    ]);
  }
});

Deno.test("FrameParser.push() accepts non-minimal length encodings (§5.2 binds the sender)", () => {
  assert.deepEqual(parse(clientFrame({ opcode: TEXT, payload: "abc", lengthBits: 16 })), [
    { kind: "text", data: "abc" },
  ]);
  assert.deepEqual(parse(clientFrame({ opcode: TEXT, payload: "abc", lengthBits: 64 })), [
    { kind: "text", data: "abc" },
  ]);
  assert.deepEqual(parse(clientFrame({ opcode: PING, payload: "p", lengthBits: 64 })), [
    { kind: "fail", closeCode: 1002, message: "control frame payload over 125 bytes" },
  ]);
});

Deno.test("FrameParser.push() fails an unmasked client frame with 1002 (§5.1)", () => {
  const events = parse(bytes(0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f));
  assert.deepEqual(events, [{
    kind: "fail",
    closeCode: 1002,
    message: "client frame is not masked",
  }]);
});

Deno.test("FrameParser.push() fails RSV bits with 1002 (§5.2)", () => {
  for (const rsv of [1, 2, 4, 7]) {
    assert.equal(failCode(parse(clientFrame({ opcode: TEXT, payload: "x", rsv }))), 1002);
  }
});

Deno.test("FrameParser.push() fails reserved opcodes with 1002 (§5.2)", () => {
  for (const opcode of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
    assert.equal(failCode(parse(clientFrame({ opcode }))), 1002, `opcode ${opcode}`);
  }
});

Deno.test("FrameParser.push() fails fragmented or long control frames with 1002 (§5.5)", () => {
  for (const opcode of [CLOSE, PING, PONG]) {
    assert.equal(failCode(parse(clientFrame({ opcode, fin: false }))), 1002);
    const long = clientFrame({ opcode, payload: new Uint8Array(126) });
    // Known from the first two bytes: nothing else needs to arrive.
    assert.equal(failCode(parse(long.subarray(0, 2))), 1002);
  }
  assert.deepEqual(parse(clientFrame({ opcode: PING, payload: new Uint8Array(125) })), [
    { kind: "ping", data: new Uint8Array(125) },
  ]);
});

Deno.test("FrameParser.push() fails continuation and interleaving errors with 1002 (§5.4)", () => {
  assert.equal(failCode(parse(clientFrame({ opcode: CONT, payload: "x" }))), 1002);
  const interleaved = concatBytes(
    clientFrame({ opcode: TEXT, payload: "a", fin: false }),
    clientFrame({ opcode: BINARY, payload: "b" }),
  );
  assert.deepEqual(parse(interleaved), [
    { kind: "fail", closeCode: 1002, message: "new data frame inside a fragmented message" },
  ]);
});

Deno.test("FrameParser.push() fails a 64-bit length with the top bit set with 1002 (§5.2)", () => {
  const frame = clientFrame({ opcode: BINARY, claimedLength: 1n << 63n });
  assert.equal(failCode(parse(frame.subarray(0, 10))), 1002);
});

Deno.test("FrameParser.push() fails with 1009 before allocating an oversized frame", () => {
  // 2^40 bytes would throw if allocated: the header alone must fail.
  const huge = clientFrame({ opcode: BINARY, claimedLength: 1n << 40n });
  assert.deepEqual(parse(huge), [
    { kind: "fail", closeCode: 1009, message: `frame payload of ${2 ** 40} bytes over 16777216` },
  ]);
  const justOver = clientFrame({ opcode: TEXT, claimedLength: 16 * 1024 * 1024 + 1 });
  assert.equal(failCode(parse(justOver)), 1009);
  const limited = { maxFramePayload: 4 };
  assert.equal(failCode(parse(clientFrame({ opcode: TEXT, payload: "12345" }), limited)), 1009);
  assert.deepEqual(parse(clientFrame({ opcode: TEXT, payload: "1234" }), limited), [
    { kind: "text", data: "1234" },
  ]);
});

Deno.test("FrameParser.push() counts every fragment toward the message limit (1009)", () => {
  const options = { maxMessageSize: 10 };
  const fragments = [
    clientFrame({ opcode: TEXT, payload: "123456", fin: false }),
    clientFrame({ opcode: PING, payload: "ping bytes do not count" }),
    clientFrame({ opcode: CONT, payload: "7890" }),
  ];
  assert.deepEqual(parse(concatBytes(...fragments), options), [
    { kind: "ping", data: utf8("ping bytes do not count") },
    { kind: "text", data: "1234567890" },
  ]);
  const over = concatBytes(fragments[0], clientFrame({ opcode: CONT, payload: "78901" }));
  assert.deepEqual(parse(over, options), [
    { kind: "fail", closeCode: 1009, message: "message over 10 bytes" },
  ]);
});

Deno.test("FrameParser.push() fails invalid UTF-8 with 1007 as soon as it is certain (§8.1)", () => {
  const frame = clientFrame({ opcode: TEXT, payload: bytes(0x61, 0xc0, 0x80, 0x62) });
  const parser = new FrameParser();
  assert.deepEqual(parser.push(frame.subarray(0, 7)), []); // 6 header bytes + "a"
  const events = parser.push(frame.subarray(7, 8)); // 0xC0: never valid
  assert.equal(events.length, 1);
  assert.equal(events[0].kind === "fail" && events[0].error.closeCode, 1007);
  assert.equal(parser.phase, "failed");
  assert.deepEqual(parser.push(frame.subarray(8)), []);
});

Deno.test("FrameParser.push() fails a text message that ends inside a code point with 1007", () => {
  const euro = utf8("€"); // E2 82 AC
  const cut = concatBytes(
    clientFrame({ opcode: TEXT, payload: euro.subarray(0, 2), fin: false }),
    clientFrame({ opcode: CONT, payload: new Uint8Array(0) }),
  );
  assert.equal(failCode(parse(cut)), 1007);
  const whole = concatBytes(
    clientFrame({ opcode: TEXT, payload: euro.subarray(0, 2), fin: false }),
    clientFrame({ opcode: CONT, payload: euro.subarray(2) }),
  );
  assert.deepEqual(parse(whole), [{ kind: "text", data: "€" }]);
  assert.equal(failCode(parse(clientFrame({ opcode: TEXT, payload: euro.subarray(0, 1) }))), 1007);
});

Deno.test("FrameParser.push() does not check binary messages as UTF-8", () => {
  assert.deepEqual(parse(clientFrame({ opcode: BINARY, payload: bytes(0xc0, 0xff) })), [
    { kind: "binary", data: bytes(0xc0, 0xff) },
  ]);
});

Deno.test("FrameParser.push() keeps a byte order mark in a text message", () => {
  assert.deepEqual(parse(clientFrame({ opcode: TEXT, payload: "\ufeffhi" })), [
    { kind: "text", data: "\ufeffhi" },
  ]);
});

Deno.test("FrameParser.push() reads close bodies per §5.5.1 and §7.4", () => {
  const close = (payload: Uint8Array) => parse(clientFrame({ opcode: CLOSE, payload }));
  assert.deepEqual(close(bytes()), [{ kind: "close", code: 1005, reason: "" }]);
  assert.deepEqual(close(bytes(0x03, 0xe8)), [{ kind: "close", code: 1000, reason: "" }]);
  assert.deepEqual(close(concatBytes(bytes(0x0f, 0xa0), utf8("bye ✓"))), [
    { kind: "close", code: 4000, reason: "bye ✓" },
  ]);
  assert.deepEqual(close(bytes(0x03)), [
    { kind: "fail", closeCode: 1002, message: "close frame body of 1 byte" },
  ]);
  assert.deepEqual(close(bytes(0x03, 0xe8, 0xc0)), [
    { kind: "fail", closeCode: 1007, message: "close reason is not UTF-8" },
  ]);
});

Deno.test("FrameParser.push() accepts exactly the close codes allowed on the wire (§7.4)", () => {
  const valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000];
  const invalid = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535];
  for (const code of [...valid, 3999, 4000, 4999]) {
    const events = parse(clientFrame({ opcode: CLOSE, payload: bytes(code >> 8, code & 0xff) }));
    assert.deepEqual(events, [{ kind: "close", code, reason: "" }], `code ${code}`);
  }
  for (const code of invalid) {
    const events = parse(clientFrame({ opcode: CLOSE, payload: bytes(code >> 8, code & 0xff) }));
    assert.deepEqual(events, [
      { kind: "fail", closeCode: 1002, message: `invalid close code ${code}` },
    ]);
  }
});

Deno.test("FrameParser.push() ignores everything after a close frame (§5.5.1)", () => {
  const parser = new FrameParser();
  const events = parser.push(concatBytes(
    clientFrame({ opcode: TEXT, payload: "before" }),
    clientFrame({ opcode: CLOSE, payload: bytes(0x03, 0xe8) }),
    clientFrame({ opcode: TEXT, payload: "after" }),
  ));
  assert.deepEqual(events, [
    { kind: "text", data: "before" },
    { kind: "close", code: 1000, reason: "" },
  ]);
  assert.equal(parser.phase, "closed");
  assert.deepEqual(parser.push(bytes(0xff, 0xff)), []);
});

Deno.test("FrameParser.push() returns events that never alias its input", () => {
  const input = concatBytes(
    clientFrame({ opcode: BINARY, payload: bytes(1, 2, 3) }),
    clientFrame({ opcode: PING, payload: bytes(4, 5) }),
  );
  const events = new FrameParser().push(input);
  input.fill(0);
  assert.deepEqual(events, [
    { kind: "binary", data: bytes(1, 2, 3) },
    { kind: "ping", data: bytes(4, 5) },
  ]);
});

Deno.test("FrameParser fail events carry a WsProtocolError with code ERR_WS_PROTOCOL", () => {
  const [event] = new FrameParser().push(clientFrame({ opcode: 3 }));
  assert.equal(event.kind, "fail");
  if (event.kind !== "fail") return;
  assert.ok(event.error instanceof WsProtocolError);
  assert.ok(event.error instanceof AppRunError);
  assert.equal(event.error.code, "ERR_WS_PROTOCOL");
  assert.equal(event.error.name, "WsProtocolError");
  assert.equal(event.error.closeCode, 1002);
});

Deno.test("FrameParser.isIdle is true only between messages", () => {
  const parser = new FrameParser();
  assert.equal(parser.isIdle, true);
  const frame = clientFrame({ opcode: TEXT, payload: "ab", fin: false });
  parser.push(frame.subarray(0, 1));
  assert.equal(parser.isIdle, false);
  parser.push(frame.subarray(1));
  assert.equal(parser.isIdle, false); // a fragmented message is in progress
  parser.push(clientFrame({ opcode: CONT, payload: "c" }));
  assert.equal(parser.isIdle, true);
});

Deno.test("new FrameParser() refuses limits that are not non-negative integers", () => {
  assert.throws(() => new FrameParser({ maxMessageSize: -1 }), RangeError);
  assert.throws(() => new FrameParser({ maxFramePayload: 1.5 }), RangeError);
  assert.throws(() => new FrameParser({ maxFramePayload: Infinity }), RangeError);
});

Deno.test("FrameParser.push() grows a frame's buffer as its payload arrives, not at its header", () => {
  const MiB = 1 << 20;
  const claimed = 16 * MiB;
  const parsers: FrameParser[] = [];
  const before = Deno.memoryUsage().external;
  // Eight clients each send a header claiming 16 MiB (the default limit) and 10 bytes.
  const start = clientFrame({ opcode: BINARY, payload: new Uint8Array(10), claimedLength: claimed })
    .subarray(0, 14 + 10);
  for (let i = 0; i < 8; i++) {
    const p = new FrameParser();
    assert.deepEqual(p.push(start), []);
    assert.equal(p.phase, "payload");
    parsers.push(p);
  }
  const held = Deno.memoryUsage().external - before;
  assert.ok(held < MiB, `8 parsers hold ${(held / MiB).toFixed(1)} MiB after 10 bytes each`);
  // The whole payload still arrives intact, in any split.
  const payload = new Uint8Array(3 * MiB + 7).map((_, i) => i * 31);
  const frame = clientFrame({ opcode: BINARY, payload });
  for (const piece of [1000, 65536, 3 * MiB]) {
    const p = new FrameParser();
    const events = [];
    for (let at = 0; at < frame.length; at += piece) {
      events.push(...p.push(frame.subarray(at, at + piece)));
    }
    assert.equal(events.length, 1);
    const e = events[0];
    assert.ok(e.kind === "binary");
    assert.equal(e.data.length, payload.length);
    assert.deepEqual(e.data, payload);
  }
});
