/**
 * @module
 * Tests that FrameParser does not care how the stream is cut: byte by byte, random splits,
 * and a snapshot taken at every byte position, sent through CBOR and restored, all give the
 * same events as one push. Also that restore refuses states it cannot trust.
 */
import assert from "node:assert/strict";
import { decode, encode } from "cbor-x/encode";
import { FrameParser, type FrameParserState, type WsEvent } from "../../runtime/ws/parser.ts";
import { AppRunError } from "../../runtime/errors.ts";
import {
  bytes,
  clientFrame,
  concatBytes,
  parse,
  parseInPieces,
  plain,
  seededRandom,
  utf8,
} from "./_frames.ts";

const TEXT = 0x1, BINARY = 0x2, CONT = 0x0, CLOSE = 0x8, PING = 0x9, PONG = 0xa;

/** A fragmented text message whose code points straddle frames, with control frames between. */
function conversation(): Uint8Array {
  const text = utf8("κόσμε €𝄞 done");
  return concatBytes(
    clientFrame({ opcode: TEXT, payload: "Hello" }),
    clientFrame({ opcode: TEXT, payload: text.subarray(0, 3), fin: false }), // κ + half of ό
    clientFrame({ opcode: PING, payload: "p1" }),
    clientFrame({ opcode: CONT, payload: text.subarray(3, 13), fin: false, lengthBits: 64 }),
    clientFrame({ opcode: CONT, payload: new Uint8Array(0), fin: false }),
    clientFrame({ opcode: PONG, payload: "" }),
    clientFrame({ opcode: CONT, payload: text.subarray(13, 17), fin: false, lengthBits: 16 }),
    clientFrame({ opcode: CONT, payload: text.subarray(17) }),
    clientFrame({ opcode: BINARY, payload: new Uint8Array(300).map((_, i) => i) }),
    clientFrame({ opcode: TEXT, payload: "" }),
    clientFrame({ opcode: CLOSE, payload: concatBytes(bytes(0x03, 0xe8), utf8("bye")) }),
  );
}

const EXPECTED = [
  { kind: "text", data: "Hello" },
  { kind: "ping", data: utf8("p1") },
  { kind: "pong", data: new Uint8Array(0) },
  { kind: "text", data: "κόσμε €𝄞 done" },
  { kind: "binary", data: new Uint8Array(300).map((_, i) => i) },
  { kind: "text", data: "" },
  { kind: "close", code: 1000, reason: "bye" },
];

/** A snapshot as it comes back from the handoff: CBOR-encoded and decoded. */
function throughCbor(state: FrameParserState): FrameParserState {
  return decode(encode(state)) as FrameParserState;
}

Deno.test("FrameParser.push() gives the same events one byte at a time", () => {
  const stream = conversation();
  assert.deepEqual(parse(stream), EXPECTED);
  const cuts = Array.from({ length: stream.length - 1 }, (_, i) => i + 1);
  assert.deepEqual(parseInPieces(stream, cuts), EXPECTED);
});

Deno.test("FrameParser.push() gives the same events for random splits", () => {
  const stream = conversation();
  const random = seededRandom(6455);
  for (let trial = 0; trial < 300; trial++) {
    const cuts = new Set<number>();
    const count = Math.floor(random() * 20);
    for (let i = 0; i < count; i++) cuts.add(Math.floor(random() * stream.length));
    const sorted = [...cuts].sort((a, b) => a - b);
    assert.deepEqual(parseInPieces(stream, sorted), EXPECTED, `cuts ${sorted}`);
  }
});

Deno.test("FrameParser.restore() continues from a CBOR snapshot taken at every byte", () => {
  const stream = conversation();
  for (let cut = 0; cut <= stream.length; cut++) {
    const before = new FrameParser();
    const events: WsEvent[] = before.push(stream.subarray(0, cut));
    const after = FrameParser.restore(throughCbor(before.snapshot()));
    assert.equal(after.phase, before.phase, `phase at ${cut}`);
    assert.equal(after.isIdle, before.isIdle);
    events.push(...after.push(stream.subarray(cut)));
    assert.deepEqual(plain(events), EXPECTED, `snapshot at byte ${cut}`);
  }
});

Deno.test("FrameParser.restore() survives a handoff after every byte", () => {
  const stream = conversation();
  let parser = new FrameParser();
  const events: WsEvent[] = [];
  for (let i = 0; i < stream.length; i++) {
    events.push(...parser.push(stream.subarray(i, i + 1)));
    parser = FrameParser.restore(throughCbor(parser.snapshot()));
  }
  assert.deepEqual(plain(events), EXPECTED);
});

Deno.test("FrameParser.snapshot() is plain data: CBOR round-trips it unchanged", () => {
  const stream = conversation();
  for (let cut = 0; cut <= stream.length; cut += 7) {
    const parser = new FrameParser();
    parser.push(stream.subarray(0, cut));
    const state = parser.snapshot();
    assert.deepEqual(throughCbor(state), state);
    assert.equal(Object.getPrototypeOf(state), Object.prototype);
  }
});

Deno.test("FrameParser.snapshot() holds the partial header, payload and message", () => {
  const frame = clientFrame({ opcode: CONT, payload: "defgh", fin: false });
  const parser = new FrameParser();
  parser.push(clientFrame({ opcode: TEXT, payload: "abc", fin: false }));
  parser.push(frame.subarray(0, 8)); // 6 header bytes + "de"
  assert.deepEqual(parser.snapshot(), {
    v: 1,
    phase: "payload",
    head: frame.subarray(0, 6),
    payload: utf8("de"),
    message: { opcode: 1, data: utf8("abc"), utf8: 0 },
    failure: null,
  });
  const partial = new FrameParser();
  partial.push(clientFrame({ opcode: BINARY, payload: new Uint8Array(200) }).subarray(0, 3));
  assert.deepEqual(partial.snapshot(), {
    v: 1,
    phase: "length",
    head: bytes(0x82, 0xfe, 0x00),
    payload: new Uint8Array(0),
    message: null,
    failure: null,
  });
});

Deno.test("FrameParser.restore() keeps a failed or closed parser as it was", () => {
  const failed = new FrameParser();
  failed.push(clientFrame({ opcode: 3 }));
  const restoredFailed = FrameParser.restore(throughCbor(failed.snapshot()));
  assert.equal(restoredFailed.phase, "failed");
  assert.deepEqual(restoredFailed.snapshot(), failed.snapshot());
  assert.deepEqual(restoredFailed.push(clientFrame({ opcode: TEXT, payload: "x" })), []);
  const closed = new FrameParser();
  closed.push(clientFrame({ opcode: CLOSE }));
  const restoredClosed = FrameParser.restore(throughCbor(closed.snapshot()));
  assert.equal(restoredClosed.phase, "closed");
  assert.deepEqual(restoredClosed.push(clientFrame({ opcode: TEXT, payload: "x" })), []);
});

Deno.test("FrameParser.restore() takes limits anew", () => {
  const parser = new FrameParser();
  parser.push(clientFrame({ opcode: TEXT, payload: "12345", fin: false }));
  const restored = FrameParser.restore(parser.snapshot(), { maxMessageSize: 8 });
  const events = plain(restored.push(clientFrame({ opcode: CONT, payload: "6789" })));
  assert.deepEqual(events, [{ kind: "fail", closeCode: 1009, message: "message over 8 bytes" }]);
});

Deno.test("FrameParser.restore() refuses states it cannot trust with ERR_HANDOFF_STATE", () => {
  const good = (): FrameParserState => {
    const parser = new FrameParser();
    parser.push(clientFrame({ opcode: TEXT, payload: "abcdef" }).subarray(0, 8));
    return parser.snapshot();
  };
  const bad: [string, (state: FrameParserState) => unknown][] = [
    ["version", (s) => ({ ...s, v: 2 })],
    ["phase", (s) => ({ ...s, phase: "resting" })],
    ["head type", (s) => ({ ...s, head: [1, 2] })],
    ["short head", (s) => ({ ...s, head: s.head.subarray(0, 5) })],
    ["long payload", (s) => ({ ...s, payload: new Uint8Array(6) })],
    ["no message", (s) => ({ ...s, message: null })],
    ["message opcode", (s) => ({ ...s, message: { ...s.message, opcode: 8 } })],
    ["utf8 state", (s) => ({ ...s, message: { ...s.message, utf8: 12 } })],
    ["failure in payload", (s) => ({ ...s, failure: { closeCode: 1002, message: "x" } })],
    ["unmasked head", (s) => ({ ...s, head: Uint8Array.of(0x81, 0x06, 0, 0, 0, 0) })],
    ["reserved opcode", (s) => ({ ...s, head: Uint8Array.of(0x83, 0x86, 0, 0, 0, 0) })],
    ["header bytes in phase head", (s) => ({ ...s, phase: "head" })],
    ["payload in phase mask", (s) => ({ ...s, phase: "mask" })],
    ["extended length phase for a 7-bit length", (s) => ({ ...s, phase: "length" })],
    ["closed with a frame", (s) => ({ ...s, phase: "closed" })],
    ["not an object", () => null],
  ];
  FrameParser.restore(good());
  for (const [name, corrupt] of bad) {
    assert.throws(
      () => FrameParser.restore(corrupt(good()) as FrameParserState),
      (err: unknown) => err instanceof AppRunError && err.code === "ERR_HANDOFF_STATE",
      name,
    );
  }
});
