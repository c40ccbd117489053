/**
 * @module
 * Tests of the server frame encoder with exact bytes (the RFC 6455 §5.7 examples), length
 * boundaries, close bodies, and a round trip through FrameParser once masked.
 */
import assert from "node:assert/strict";
import {
  encodeBinary,
  encodeClose,
  encodeFrame,
  encodeMessage,
  encodePing,
  encodePong,
  encodeText,
  truncateUtf8,
} from "../../runtime/ws/encoder.ts";
import { OPCODE } from "../../runtime/ws/constants.ts";
import { bytes, concatBytes, maskServerFrame, parse, seededRandom, utf8 } from "./_frames.ts";

Deno.test("encodeText() and encodeMessage() write the RFC 6455 §5.7 unmasked examples", () => {
  assert.deepEqual(encodeText("Hello"), bytes(0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f));
  assert.deepEqual(encodeMessage("Hello", { fragmentSize: 3 }), [
    bytes(0x01, 0x03, 0x48, 0x65, 0x6c),
    bytes(0x80, 0x02, 0x6c, 0x6f),
  ]);
  assert.deepEqual(encodePing(utf8("Hello")), bytes(0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f));
  const b256 = encodeBinary(new Uint8Array(256));
  assert.deepEqual(b256.subarray(0, 4), bytes(0x82, 0x7e, 0x01, 0x00));
  assert.equal(b256.length, 260);
  const b64k = encodeBinary(new Uint8Array(65536));
  assert.deepEqual(b64k.subarray(0, 10), bytes(0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0));
  assert.equal(b64k.length, 65546);
});

Deno.test("encodeFrame() uses the minimal length encoding at each boundary (§5.2)", () => {
  for (
    const [length, header] of [[0, 2], [125, 2], [126, 4], [65535, 4], [65536, 10]] as const
  ) {
    const frame = encodeBinary(new Uint8Array(length));
    assert.equal(frame.length, header + length, `length ${length}`);
    assert.equal(frame[1] & 0x80, 0, "server frames are unmasked");
  }
});

Deno.test("encodeText() allocates one exact buffer, even for multi-byte text", () => {
  for (const text of ["", "a", "κόσμε", "€".repeat(100), "𝄞x", "lone \ud800 surrogate", "\udc00"]) {
    const frame = encodeText(text);
    assert.equal(frame.buffer.byteLength, frame.length, text);
    assert.deepEqual(parse(maskServerFrame(frame)), [
      { kind: "text", data: new TextDecoder().decode(utf8(text)) },
    ]);
  }
});

Deno.test("encodeClose() writes the code and a reason cut to 123 bytes on a code point", () => {
  assert.deepEqual(encodeClose(), bytes(0x88, 0x00));
  assert.deepEqual(
    encodeClose({ code: 1000, reason: "bye" }),
    bytes(0x88, 0x05, 0x03, 0xe8, 0x62, 0x79, 0x65),
  );
  assert.deepEqual(encodeClose({ code: 1012 }), bytes(0x88, 0x02, 0x03, 0xf4));
  const long = encodeClose({ code: 1001, reason: "a" + "€".repeat(50) });
  assert.equal(long.length, 2 + 2 + 1 + 40 * 3); // 41 € would be 124 bytes
  assert.deepEqual(parse(maskServerFrame(long)), [
    { kind: "close", code: 1001, reason: "a" + "€".repeat(40) },
  ]);
  assert.equal(encodeClose({ code: 4000, reason: "x".repeat(200) }).length, 2 + 125);
});

Deno.test("encodeClose() refuses codes that may not be sent and reasons without a code", () => {
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]) {
    assert.throws(() => encodeClose({ code }), RangeError, `code ${code}`);
  }
  assert.throws(() => encodeClose({ reason: "why" }), RangeError);
});

Deno.test("encodeFrame() refuses control frames RFC 6455 forbids (§5.5)", () => {
  assert.throws(() => encodePing(new Uint8Array(126)), RangeError);
  assert.throws(() => encodePong(new Uint8Array(126)), RangeError);
  assert.throws(
    () => encodeFrame({ opcode: OPCODE.PING, payload: bytes(), fin: false }),
    RangeError,
  );
  assert.throws(() => encodeFrame({ opcode: OPCODE.CLOSE, payload: bytes(3) }), RangeError);
  assert.deepEqual(encodePong(new Uint8Array(125)).length, 127);
});

Deno.test("truncateUtf8() never splits a code point", () => {
  assert.deepEqual(truncateUtf8("abc", 5), utf8("abc"));
  assert.deepEqual(truncateUtf8("a€", 3), utf8("a"));
  assert.deepEqual(truncateUtf8("a€", 4), utf8("a€"));
  assert.deepEqual(truncateUtf8("𝄞𝄞", 7), utf8("𝄞"));
  assert.deepEqual(truncateUtf8("€", 0), utf8(""));
});

const ALPHABET = ["a", "é", "€", "𝄞"]; // one to four UTF-8 bytes

Deno.test("encodeMessage() fragments round-trip through FrameParser once masked", () => {
  const random = seededRandom(9);
  let fragmented = 0;
  for (let trial = 0; trial < 100; trial++) {
    const length = Math.floor(random() * 400);
    const fragmentSize = 1 + Math.floor(random() * 50);
    const text = Array.from({ length }, () => ALPHABET[Math.floor(random() * 4)]).join("");
    const frames = encodeMessage(text, { fragmentSize });
    if (utf8(text).length > fragmentSize) {
      assert.ok(frames.length > 1, `${utf8(text).length} bytes in ${fragmentSize}-byte fragments`);
      fragmented++;
    }
    assert.equal(frames[0][0] & 0x0f, OPCODE.TEXT);
    for (const frame of frames.slice(1)) assert.equal(frame[0] & 0x0f, OPCODE.CONTINUATION);
    assert.equal(frames.at(-1)![0] & 0x80, 0x80);
    assert.deepEqual(parse(concatBytes(...frames.map((f) => maskServerFrame(f)))), [
      { kind: "text", data: text },
    ]);
    const binary = utf8(text);
    assert.deepEqual(
      parse(concatBytes(...encodeMessage(binary, { fragmentSize }).map((f) => maskServerFrame(f)))),
      [
        { kind: "binary", data: binary },
      ],
    );
  }
  assert.ok(fragmented > 50, `only ${fragmented} of 100 messages were fragmented`);
  assert.throws(() => encodeMessage("x", { fragmentSize: 0 }), RangeError);
  assert.deepEqual(encodeMessage(""), [bytes(0x81, 0x00)]);
});
