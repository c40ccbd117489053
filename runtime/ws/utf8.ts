/**
 * @module
 * Incremental UTF-8 validation whose whole state is one small integer, so a text message
 * half-received can be carried across a restart. A DFA built from the RFC 3629 §4 grammar;
 * it rejects at the first byte that no valid continuation could follow (fail fast, RFC 6455
 * §8.1). It validates only: decoding to a string is the caller's, once a message is whole.
 * Never touches sockets.
 */

/** The validator's state: {@link UTF8_ACCEPT}, {@link UTF8_REJECT} or mid-sequence (2–8). */
export type Utf8State = number;

/** At a code point boundary: everything so far is valid UTF-8. */
export const UTF8_ACCEPT: Utf8State = 0;
/** Definitely invalid: no continuation can make it valid. Absorbing. */
export const UTF8_REJECT: Utf8State = 1;

// Mid-sequence states, named by what the next byte must be (RFC 3629 §4):
const TAIL_1 = 2; // one %x80-BF left
const TAIL_2 = 3; // two tails left
const TAIL_3 = 4; // three tails left
const AFTER_E0 = 5; // %xA0-BF, then one tail (no overlong 3-byte forms)
const AFTER_ED = 6; // %x80-9F, then one tail (no UTF-16 surrogates)
const AFTER_F0 = 7; // %x90-BF, then two tails (no overlong 4-byte forms)
const AFTER_F4 = 8; // %x80-8F, then two tails (nothing above U+10FFFF)
const STATE_COUNT = 9;

/** The transition table: `TABLE[state << 8 | byte]` is the next state. */
const TABLE: Uint8Array = buildTable();

function buildTable(): Uint8Array {
  const table = new Uint8Array(STATE_COUNT << 8).fill(UTF8_REJECT);
  function range(state: number, lo: number, hi: number, next: number): void {
    for (let b = lo; b <= hi; b++) table[(state << 8) | b] = next;
  }
  // UTF8-char = UTF8-1 / UTF8-2 / UTF8-3 / UTF8-4
  range(UTF8_ACCEPT, 0x00, 0x7f, UTF8_ACCEPT);
  range(UTF8_ACCEPT, 0xc2, 0xdf, TAIL_1);
  range(UTF8_ACCEPT, 0xe0, 0xe0, AFTER_E0);
  range(UTF8_ACCEPT, 0xe1, 0xec, TAIL_2);
  range(UTF8_ACCEPT, 0xed, 0xed, AFTER_ED);
  range(UTF8_ACCEPT, 0xee, 0xef, TAIL_2);
  range(UTF8_ACCEPT, 0xf0, 0xf0, AFTER_F0);
  range(UTF8_ACCEPT, 0xf1, 0xf3, TAIL_3);
  range(UTF8_ACCEPT, 0xf4, 0xf4, AFTER_F4);
  // UTF8-tail = %x80-BF, with the narrower second bytes after E0, ED, F0 and F4.
  range(TAIL_1, 0x80, 0xbf, UTF8_ACCEPT);
  range(TAIL_2, 0x80, 0xbf, TAIL_1);
  range(TAIL_3, 0x80, 0xbf, TAIL_2);
  range(AFTER_E0, 0xa0, 0xbf, TAIL_1);
  range(AFTER_ED, 0x80, 0x9f, TAIL_1);
  range(AFTER_F0, 0x90, 0xbf, TAIL_2);
  range(AFTER_F4, 0x80, 0x8f, TAIL_2);
  return table;
}

/**
 * Runs the validator over `bytes[start, end)` from `state` and returns the new state.
 * Stops early at {@link UTF8_REJECT}. Pure: the caller keeps the state.
 */
export function utf8Step(
  state: Utf8State,
  bytes: Uint8Array,
  start = 0,
  end: number = bytes.length,
): Utf8State {
  let s = state;
  for (let i = start; i < end; i++) {
    const b = bytes[i];
    if (s === UTF8_ACCEPT && b < 0x80) continue; // ASCII fast path
    s = TABLE[(s << 8) | b];
    if (s === UTF8_REJECT) return s;
  }
  return s;
}

/** Whether `state` is one {@link utf8Step} can return (for validating restored state). */
export function isUtf8State(state: unknown): state is Utf8State {
  return Number.isInteger(state) && (state as number) >= 0 && (state as number) < STATE_COUNT;
}

/** Whether `bytes` is complete, valid UTF-8. */
export function isValidUtf8(bytes: Uint8Array): boolean {
  return utf8Step(UTF8_ACCEPT, bytes) === UTF8_ACCEPT;
}
