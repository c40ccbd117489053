/**
 * @module
 * Tests of the incremental UTF-8 validator against the platform's fatal TextDecoder: whole
 * sequences, streamed prefixes (fail fast), every scalar value, and splits at every byte.
 */
import assert from "node:assert/strict";
import {
  isUtf8State,
  isValidUtf8,
  UTF8_ACCEPT,
  UTF8_REJECT,
  utf8Step,
} from "../../runtime/ws/utf8.ts";
import { bytes, utf8 } from "./_frames.ts";

const fatalDecoder = new TextDecoder("utf-8", { fatal: true });

function decoderAccepts(input: Uint8Array): boolean {
  try {
    fatalDecoder.decode(input);
    return true;
  } catch {
    return false;
  }
}

/** Whether a streaming fatal decoder already knows `input` cannot be valid. */
function decoderRejectsPrefix(input: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(input, { stream: true });
    return false;
  } catch {
    return true;
  }
}

Deno.test("utf8Step() agrees with TextDecoder on every 1- and 2-byte sequence", () => {
  for (let a = 0; a < 256; a++) {
    assert.equal(isValidUtf8(bytes(a)), decoderAccepts(bytes(a)), `${a}`);
    for (let b = 0; b < 256; b++) {
      const input = bytes(a, b);
      assert.equal(isValidUtf8(input), decoderAccepts(input), `${a} ${b}`);
      assert.equal(utf8Step(UTF8_ACCEPT, input) === UTF8_REJECT, decoderRejectsPrefix(input));
    }
  }
});

Deno.test("utf8Step() agrees with TextDecoder on 3- and 4-byte sequences of boundary bytes", () => {
  // Every boundary of RFC 3629's ranges, and a byte on each side.
  const edges = [
    0x00,
    0x41,
    0x7f,
    0x80,
    0x8f,
    0x90,
    0x9f,
    0xa0,
    0xbf,
    0xc0,
    0xc1,
    0xc2,
    0xdf,
    0xe0,
    0xe1,
    0xec,
    0xed,
    0xee,
    0xef,
    0xf0,
    0xf1,
    0xf3,
    0xf4,
    0xf5,
    0xff,
  ];
  for (const a of edges) {
    for (const b of edges) {
      for (const c of edges) {
        const three = bytes(a, b, c);
        assert.equal(isValidUtf8(three), decoderAccepts(three), `${three}`);
        assert.equal(utf8Step(UTF8_ACCEPT, three) === UTF8_REJECT, decoderRejectsPrefix(three));
        if (a < 0xf0 || a > 0xf5) continue; // four-byte leads and their neighbour
        for (const d of edges) {
          const four = bytes(a, b, c, d);
          assert.equal(isValidUtf8(four), decoderAccepts(four), `${four}`);
          assert.equal(utf8Step(UTF8_ACCEPT, four) === UTF8_REJECT, decoderRejectsPrefix(four));
        }
      }
    }
  }
});

Deno.test("isValidUtf8() accepts every Unicode scalar value", () => {
  const points: number[] = [];
  for (let cp = 0; cp <= 0x10ffff; cp++) if (cp < 0xd800 || cp > 0xdfff) points.push(cp);
  let text = "";
  for (let i = 0; i < points.length; i += 4096) {
    text += String.fromCodePoint(...points.slice(i, i + 4096));
  }
  assert.equal(isValidUtf8(utf8(text)), true);
});

Deno.test("utf8Step() rejects surrogates, overlongs and code points above U+10FFFF", () => {
  const invalid = [
    bytes(0xed, 0xa0, 0x80), // U+D800
    bytes(0xed, 0xbf, 0xbf), // U+DFFF
    bytes(0xc0, 0xaf), // overlong "/"
    bytes(0xe0, 0x80, 0xaf),
    bytes(0xf0, 0x80, 0x80, 0xaf),
    bytes(0xf4, 0x90, 0x80, 0x80), // U+110000
    bytes(0x80), // lone continuation
    bytes(0xfe),
    bytes(0xff),
  ];
  for (const input of invalid) assert.equal(isValidUtf8(input), false, `${input}`);
});

Deno.test("utf8Step() fails fast at the first byte that rules out every continuation", () => {
  // [input, index of the first byte after which the state is REJECT]
  const cases: [Uint8Array, number][] = [
    [bytes(0x41, 0xe0, 0x80, 0x80), 2], // E0 80: overlong, known at the second byte
    [bytes(0xed, 0xa0, 0x80), 1], // surrogate, known at A0
    [bytes(0xf4, 0x90, 0x80, 0x80), 1],
    [bytes(0xce, 0xba, 0xf5), 2],
  ];
  for (const [input, at] of cases) {
    let state = UTF8_ACCEPT;
    for (let i = 0; i < input.length; i++) {
      state = utf8Step(state, input, i, i + 1);
      assert.equal(state === UTF8_REJECT, i >= at, `${input} at ${i}`);
    }
  }
});

Deno.test("utf8Step() gives the same answer for every split of the input", () => {
  const input = utf8("κόσμε € 𝄞 a\u00e9\u{10ffff}");
  const whole = utf8Step(UTF8_ACCEPT, input);
  assert.equal(whole, UTF8_ACCEPT);
  for (let cut = 0; cut <= input.length; cut++) {
    const first = utf8Step(UTF8_ACCEPT, input, 0, cut);
    assert.ok(isUtf8State(first));
    assert.equal(utf8Step(first, input, cut), whole);
  }
  const truncated = input.subarray(0, input.length - 1);
  assert.notEqual(utf8Step(UTF8_ACCEPT, truncated), UTF8_ACCEPT);
  assert.notEqual(utf8Step(UTF8_ACCEPT, truncated), UTF8_REJECT);
});

Deno.test("isUtf8State() accepts only the validator's states", () => {
  for (let s = 0; s <= 8; s++) assert.equal(isUtf8State(s), true);
  for (const s of [-1, 9, 12, 1.5, "0", null]) assert.equal(isUtf8State(s), false);
});
