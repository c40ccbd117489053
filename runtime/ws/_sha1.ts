/**
 * @module
 * SHA-1 (FIPS 180-4 §6.1), synchronous, for `Sec-WebSocket-Accept` only: the handshake
 * hashes ~60 bytes once per connection. `crypto.subtle.digest` is asynchronous, and
 * `node:crypto`'s `createHash` — synchronous — costs 45–65 ms to import (measured with Deno
 * 2.9.6), which every worker start, and so every handoff pause, would pay. Not for anything
 * that needs a secure hash; tests compare it with `node:crypto` on every length up to 200
 * bytes. Private to runtime/ws; never touches sockets.
 */

/** The 20-byte SHA-1 digest of `message`. */
export function sha1(message: Uint8Array): Uint8Array {
  // §5.1.1: append 0x80, zeros, and the bit length as 64 bits, to a multiple of 64 bytes.
  const blocks = new Uint8Array((((message.length + 8) >> 6) + 1) << 6);
  blocks.set(message);
  blocks[message.length] = 0x80;
  const view = new DataView(blocks.buffer);
  const bits = message.length * 8;
  view.setUint32(blocks.length - 8, Math.floor(bits / 2 ** 32));
  view.setUint32(blocks.length - 4, bits >>> 0);
  // §5.3.1: the initial hash value.
  let h0 = 0x67452301, h1 = 0xefcdab89, h2 = 0x98badcfe, h3 = 0x10325476, h4 = 0xc3d2e1f0;
  const w = new Int32Array(80);
  for (let block = 0; block < blocks.length; block += 64) {
    // §6.1.2 step 1: the message schedule.
    for (let t = 0; t < 16; t++) w[t] = view.getInt32(block + 4 * t);
    for (let t = 16; t < 80; t++) w[t] = rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    // Steps 2–3: eighty rounds.
    let a = h0, b = h1, c = h2, d = h3, e = h4;
    for (let t = 0; t < 80; t++) {
      const temp = (rotl(a, 5) + roundFunction(t, b, c, d) + e + w[t]) | 0;
      e = d;
      d = c;
      c = rotl(b, 30);
      b = a;
      a = temp;
    }
    // Step 4: the intermediate hash value.
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
  }
  const digest = new Uint8Array(20);
  const out = new DataView(digest.buffer);
  [h0, h1, h2, h3, h4].forEach((h, i) => out.setInt32(4 * i, h));
  return digest;
}

/** f_t(b, c, d) + K_t: the §4.1.1 function and §4.2.1 constant of round `t`. */
function roundFunction(t: number, b: number, c: number, d: number): number {
  if (t < 20) return ((b & c) | (~b & d)) + 0x5a827999;
  if (t < 40) return (b ^ c ^ d) + 0x6ed9eba1;
  if (t < 60) return ((b & c) | (b & d) | (c & d)) + 0x8f1bbcdc;
  return (b ^ c ^ d) + 0xca62c1d6;
}

function rotl(x: number, n: number): number {
  return (x << n) | (x >>> (32 - n));
}
