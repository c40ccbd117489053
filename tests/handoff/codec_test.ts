/**
 * Tests for runtime/handoff/codec.ts and state.ts: round trips, every single-byte corruption
 * and truncation, refused versions and shapes, and a seeded fuzz that only ever sees
 * HandoffStateError. Pure: no sockets (bundle_test.ts carries these bytes across processes).
 */
import assert from "node:assert/strict";
import { Encoder } from "cbor-x/encode";
import {
  crc32c,
  decodeState,
  encodeState,
  loadStateCodec,
  STATE_HEADER_SIZE,
} from "../../runtime/handoff/codec.ts";
import { HandoffStateError, type HandoffStateReason } from "../../runtime/handoff/errors.ts";
import {
  type ConnectionRecord,
  type HandoffState,
  toWireRecord,
} from "../../runtime/handoff/state.ts";
import { encodeSockAddr } from "../../runtime/sys/mod.ts";

// The codec loads cbor-x on first need (runtime/handoff/codec.ts).
await loadStateCodec();

const cbor = new Encoder({ useRecords: false, tagUint8Array: false });

function sampleRecord(i: number): ConnectionRecord {
  return {
    kind: (["http", "ws", "sse"] as const)[i % 3],
    buffered: new TextEncoder().encode(`GET /${i} HTTP/1.1\r\nHost: x\r\n`),
    local: encodeSockAddr({ transport: "tcp", family: "IPv4", hostname: "127.0.0.1", port: 8080 }),
    peer: i % 2
      ? encodeSockAddr({ transport: "tcp", family: "IPv6", hostname: "::1", port: 40000 + i })
      : encodeSockAddr({ transport: "unix", path: "/run/app.sock" }),
    proto: i % 3 === 1
      ? { opcode: 1, partial: new Uint8Array([0x81, 0x85]), isMasked: true }
      : null,
    app: { session: `s${i}`, counters: [1, 2.5, -3], big: 2n ** 70n, nothing: undefined },
    listener: i % 2 ? "main" : null,
  };
}

function sampleState(count = 3): HandoffState {
  return {
    apprunVersion: "0.1.0",
    generation: 7,
    createdAt: 1_732_500_000_000,
    pid: 4242,
    connections: Array.from({ length: count }, (_, i) => sampleRecord(i)),
    app: { users: 12, blob: new Uint8Array([0, 255]), nested: { list: [null, true, "x"] } },
  };
}

/** Frames any payload bytes with a correct header (so CBOR and shape checks are reached). */
function frame(payload: Uint8Array, version = 1, flags = 0): Uint8Array {
  const out = new Uint8Array(STATE_HEADER_SIZE + payload.byteLength);
  const view = new DataView(out.buffer);
  out.set([0x41, 0x50, 0x52, 0x53]);
  view.setUint16(4, version);
  view.setUint16(6, flags);
  view.setUint32(8, payload.byteLength);
  view.setUint32(12, crc32c(payload));
  out.set(payload, STATE_HEADER_SIZE);
  return out;
}

function frameValue(value: unknown): Uint8Array {
  return frame(cbor.encode(value));
}

function assertRefused(
  bytes: Uint8Array,
  reason: HandoffStateReason,
  pattern?: RegExp,
  options?: { expectedGeneration?: number },
): void {
  assert.throws(() => decodeState(bytes, options), (err: unknown) => {
    assert.ok(err instanceof HandoffStateError, `not a HandoffStateError: ${err}`);
    assert.equal(err.code, "ERR_HANDOFF_STATE");
    assert.equal(err.reason, reason, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

/**
 * Walks one CBOR item (RFC 8949 §3) and fails on any tag but the standard bignums (tags 2 and
 * 3, §3.4.3): proves the output is plain CBOR that any decoder reads.
 */
function assertPlainCbor(bytes: Uint8Array): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  function readArg(info: number): number {
    if (info < 24) return info;
    const size = 1 << (info - 24);
    const n = size === 1
      ? view.getUint8(pos)
      : size === 2
      ? view.getUint16(pos)
      : size === 4
      ? view.getUint32(pos)
      : Number(view.getBigUint64(pos));
    pos += size;
    return n;
  }
  function item(): void {
    const initial = bytes[pos++];
    const major = initial >> 5, info = initial & 31;
    assert.notEqual(info, 31, `indefinite length at offset ${pos - 1}`);
    if (major === 7) return void (info >= 25 && info <= 27 ? (pos += 1 << (info - 24)) : 0);
    const arg = readArg(info);
    if (major === 6) assert.ok(arg === 2 || arg === 3, `CBOR tag ${arg} at offset ${pos}`);
    if (major === 2 || major === 3) pos += arg;
    else if (major === 4) { for (let i = 0; i < arg; i++) item(); }
    else if (major === 5) { for (let i = 0; i < 2 * arg; i++) item(); }
    else if (major === 6) item();
  }
  item();
  assert.equal(pos, bytes.byteLength, "one CBOR item, nothing after it");
}

Deno.test("crc32c() matches the CRC-32C check value", () => {
  assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
});

Deno.test("encodeState() / decodeState() round-trip every field exactly", () => {
  const state = sampleState(5);
  const decoded = decodeState(encodeState(state));
  assert.deepStrictEqual(decoded, state);
  for (const record of decoded.connections) {
    // Plain Uint8Array, not a Buffer or a view into the input.
    assert.equal(Object.getPrototypeOf(record.buffered), Uint8Array.prototype);
  }
  const empty = { ...sampleState(0), app: null };
  assert.deepStrictEqual(decodeState(encodeState(empty)), empty);
});

Deno.test("encodeState() writes the documented header and a tag-free CBOR payload", () => {
  const bytes = encodeState(sampleState());
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  assert.equal(new TextDecoder().decode(bytes.subarray(0, 4)), "APRS");
  assert.equal(view.getUint16(4), 1);
  assert.equal(view.getUint16(6), 0);
  assert.equal(view.getUint32(8), bytes.byteLength - STATE_HEADER_SIZE);
  assert.equal(view.getUint32(12), crc32c(bytes.subarray(STATE_HEADER_SIZE)));
  assertPlainCbor(bytes.subarray(STATE_HEADER_SIZE));
});

Deno.test("decodeState() does not alias its input", () => {
  const bytes = encodeState(sampleState());
  const decoded = decodeState(bytes);
  const before = decoded.connections[0].buffered.slice();
  bytes.fill(0);
  assert.deepStrictEqual(decoded.connections[0].buffered, before);
});

Deno.test("decodeState() refuses every single corrupted byte", () => {
  const good = encodeState(sampleState());
  const headerReasons: HandoffStateReason[] = [
    ...Array<HandoffStateReason>(4).fill("magic"),
    ...Array<HandoffStateReason>(2).fill("version"),
    ...Array<HandoffStateReason>(2).fill("flags"),
    ...Array<HandoffStateReason>(4).fill("length"),
    ...Array<HandoffStateReason>(4).fill("checksum"),
  ];
  for (const mask of [0x01, 0x80, 0xff]) {
    for (let i = 0; i < good.byteLength; i++) {
      const bad = good.slice();
      bad[i] ^= mask;
      assertRefused(bad, i < STATE_HEADER_SIZE ? headerReasons[i] : "checksum");
    }
  }
});

Deno.test("decodeState() refuses a state truncated at every length", () => {
  const good = encodeState(sampleState());
  for (let n = 0; n < good.byteLength; n++) assertRefused(good.subarray(0, n), "length");
  const longer = new Uint8Array(good.byteLength + 1);
  longer.set(good);
  assertRefused(longer, "length", /payload is \d+ bytes, its header says/);
});

Deno.test("decodeState() refuses a wrong magic and names what it saw", () => {
  const bad = encodeState(sampleState());
  bad.set(new TextEncoder().encode("APRN"));
  assertRefused(bad, "magic", /0x4150524e/);
});

Deno.test("decodeState() refuses a newer format version by number (rollback safety)", () => {
  const payload = cbor.encode(sampleState());
  assertRefused(frame(payload, 2), "version", /format version 2 is newer than .* \(version 1\)/);
  assertRefused(frame(payload, 0xffff), "version", /version 65535/);
  assertRefused(frame(payload, 0), "version", /version 0 is not/);
  assertRefused(frame(payload, 1, 0x0001), "flags", /0x0001/);
});

Deno.test("decodeState() refuses a bad checksum", () => {
  const bad = encodeState(sampleState());
  new DataView(bad.buffer).setUint32(12, 0xdeadbeef);
  assertRefused(bad, "checksum", /0xdeadbeef/);
});

Deno.test("decodeState() refuses malformed CBOR and trailing bytes", () => {
  assertRefused(frame(new Uint8Array(0)), "cbor");
  assertRefused(frame(new Uint8Array([0xff, 0xff])), "cbor");
  assertRefused(frame(new Uint8Array([0xbf])), "cbor");
  const payload = cbor.encode(sampleState());
  const trailing = new Uint8Array(payload.byteLength + 1);
  trailing.set(payload);
  assertRefused(frame(trailing), "cbor", /1 bytes after the data item/);
  // Regression: cbor-x spins ~1.3 s on an unterminated indefinite map; the payload is now
  // checked for well-formedness (RFC 8949 Appendix C) first, in linear time.
  const started = performance.now();
  for (const bytes of [[0xbf], [0x9f], [0x9f, 0x9f, 0x01], [0xbb, 0xff, 0xff, 0xff, 0xff, 0xff]]) {
    assertRefused(frame(new Uint8Array(bytes)), "cbor");
  }
  assert.ok(performance.now() - started < 100, "refused quickly");
  assertRefused(frame(new Uint8Array(200).fill(0x81)), "cbor", /nested deeper than/);
});

Deno.test("decodeState() refuses bad shapes and names the field", () => {
  // The state as it travels: records are arrays [kind, buffered, local, peer, proto, app, listener].
  const state = () => {
    const s = structuredClone(sampleState());
    return { ...s, connections: s.connections.map(toWireRecord) } as unknown as Record<
      string,
      unknown
    >;
  };
  const FIELD = { kind: 0, buffered: 1, local: 2, peer: 3, proto: 4, app: 5, listener: 6 };
  const record = (patch: Partial<Record<keyof typeof FIELD, unknown>>) => {
    const s = state();
    const wire = [...toWireRecord(sampleRecord(1))] as unknown[];
    for (const [k, v] of Object.entries(patch)) wire[FIELD[k as keyof typeof FIELD]] = v;
    (s.connections as unknown[])[1] = wire;
    return s;
  };
  const withRecord = (value: unknown) => {
    const s = state();
    (s.connections as unknown[])[1] = value;
    return s;
  };
  const cases: [unknown, RegExp][] = [
    [[1, 2], /state: expected an object, got array/],
    [{ ...state(), extra: 1 }, /state: unknown field "extra"/],
    [(({ pid: _, ...s }) => s)(state()), /missing field "pid"/],
    [{ ...state(), apprunVersion: "" }, /state.apprunVersion/],
    [{ ...state(), generation: -1 }, /state.generation: expected an integer/],
    [{ ...state(), generation: 1.5 }, /state.generation/],
    [{ ...state(), generation: "7" }, /state.generation: .*got string/],
    [{ ...state(), pid: 0 }, /state.pid/],
    [{ ...state(), createdAt: null }, /state.createdAt/],
    [{ ...state(), connections: {} }, /state.connections: expected an array/],
    [record({ kind: "ftp" }), /connections\[1\].kind: unknown connection kind "ftp"/],
    [record({ kind: 3 }), /unknown connection kind number/],
    [record({ buffered: "GET /" }), /connections\[1\].buffered: expected bytes/],
    [record({ listener: 5 }), /connections\[1\].listener/],
    [
      withRecord([...toWireRecord(sampleRecord(1)), true]),
      /connections\[1\]: expected a record of 7 fields, got array of 8/,
    ],
    [withRecord({ kind: "http" }), /connections\[1\]: expected a record of 7 fields, got Object/],
    [record({ local: "127.0.0.1:8080" }), /connections\[1\].local: expected a sockaddr/],
    [record({ local: new Uint8Array(1) }), /connections\[1\].local: expected a sockaddr/],
    [record({ peer: new Uint8Array(200) }), /connections\[1\].peer: expected a sockaddr/],
    [record({ peer: { transport: "tcp" } }), /connections\[1\].peer: expected a sockaddr/],
    [{ ...state(), app: deepList(65) }, /state.app.*nested deeper than 64/],
  ];
  for (const [value, pattern] of cases) {
    // The encoder's own settings: every byte string plain, so the shape check is reached.
    const payload = new Encoder({ useRecords: false, tagUint8Array: false }).encode(value);
    assertRefused(frame(payload), "shape", pattern);
  }
  // What only a tag can carry is refused before the decoder sees it (encodeState() refuses
  // the same values as not plain data, below).
  const tagged: [unknown, RegExp][] = [
    [record({ proto: new Map([["a", 1]]) }), /tag 259 at offset/],
    [record({ proto: new Date(0) }), /tag 1 at offset/],
    [record({ app: { set: new Set([1]) } }), /tag 258 at offset/],
    [record({ app: new Uint16Array(2) }), /tag 69 at offset/],
  ];
  for (const [value, pattern] of tagged) {
    const payload = new Encoder({ useRecords: false, tagUint8Array: false }).encode(value);
    assertRefused(frame(payload), "cbor", pattern);
  }
  // A generic CBOR encoder's output (Uint8Array tagged 64): what a buggy or hostile writer
  // could produce.
  assertRefused(frame(new Encoder({ useRecords: false }).encode(state())), "cbor", /tag 64 at/);
  assert.doesNotThrow(() => decodeState(frameValue({ ...state(), app: deepList(63) })));
});

function deepList(depth: number): unknown {
  let value: unknown = 0;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

Deno.test("decodeState() refuses another generation when one is expected", () => {
  const bytes = encodeState(sampleState());
  assert.equal(decodeState(bytes, { expectedGeneration: 7 }).generation, 7);
  assertRefused(bytes, "generation", /generation 7, expected 8/, { expectedGeneration: 8 });
});

Deno.test("encodeState() refuses what would not decode to the same value", () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  class Session {
    id = 1;
  }
  const bad: [unknown, RegExp][] = [
    [() => 1, /state.app: function is not plain data/],
    [new Session(), /Session is not plain data/],
    [new Map(), /Map is not plain data/],
    [new Date(0), /Date is not plain data/],
    [{ set: new Set([1]) }, /state.app.set: Set is not plain data/],
    [new Uint16Array(2), /Uint16Array is not plain data/],
    [cyclic, /state.app.self: cycle/],
    [{ [Symbol("x")]: 1 }, /symbol keys/],
    [JSON.parse('{"__proto__": 1}'), /__proto__/],
  ];
  for (const [app, pattern] of bad) {
    assert.throws(() => encodeState({ ...sampleState(), app }), (err: unknown) => {
      assert.ok(err instanceof HandoffStateError);
      assert.equal(err.reason, "shape");
      assert.match(err.message, pattern);
      return true;
    });
  }
  const throwing = {
    get boom() {
      throw new Error("getter");
    },
  };
  assert.throws(() => encodeState({ ...sampleState(), app: throwing }), HandoffStateError);
  // A repeated (not cyclic) reference is fine: it is a tree once encoded.
  const shared = { a: 1 };
  assert.doesNotThrow(() => encodeState({ ...sampleState(), app: [shared, shared] }));
});

/** xorshift32: a seeded generator, so a fuzz failure reproduces. */
function makeRandom(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

function randomValue(random: (n: number) => number, depth: number): unknown {
  switch (random(depth > 3 ? 8 : 12)) {
    case 0:
      return random(1000) - 500;
    case 1:
      return "k".repeat(random(5));
    case 2:
      return null;
    case 3:
      return Uint8Array.from({ length: random(6) }, () => random(256));
    case 4:
      return random(2) === 0;
    case 5:
      return random(2) ? ["http", "ws", "sse", "ftp"][random(4)] : undefined;
    case 6:
      return new Date(random(1e9));
    case 7:
      return BigInt(random(1e6));
    case 8:
      return Array.from({ length: random(4) }, () => randomValue(random, depth + 1));
    case 9:
      return new Map([[String(random(9)), randomValue(random, depth + 1)]]);
    default: {
      const keys = ["kind", "buffered", "local", "peer", "proto", "app", "listener", "pid", "x"];
      const out: Record<string, unknown> = {};
      for (let i = random(8); i > 0; i--) {
        out[keys[random(keys.length)]] = randomValue(random, depth + 1);
      }
      return out;
    }
  }
}

Deno.test("decodeState() throws only HandoffStateError on 10 000 fuzzed inputs", () => {
  const random = makeRandom(0x5eed); // FUZZ_N=200000 for a longer run
  const good = encodeState(sampleState(4));
  const anyCbor = new Encoder({ useRecords: false });
  const reasons = new Map<string, number>();
  let accepted = 0;
  for (let i = 0; i < Number(Deno.env.get("FUZZ_N") ?? 10_000); i++) {
    let input: Uint8Array;
    switch (i % 5) {
      case 0: // random bytes, sometimes after a real header start
        input = Uint8Array.from({ length: random(64) }, () => random(256));
        if (random(2)) input.set(good.subarray(0, Math.min(6, input.length)));
        break;
      case 1: { // a real state with a few bytes changed, inserted or cut
        input = good.slice(0, good.byteLength - random(3) * random(good.byteLength));
        for (let k = 1 + random(4); k > 0 && input.length; k--) {
          input[random(input.length)] = random(256);
        }
        break;
      }
      case 2: { // a correct frame around a corrupted payload: reaches the CBOR decoder
        const payload = good.slice(STATE_HEADER_SIZE);
        for (let k = 1 + random(6); k > 0; k--) payload[random(payload.length)] = random(256);
        input = frame(payload.subarray(0, payload.length - random(4)));
        break;
      }
      case 3: // a correct frame around random CBOR-ish bytes
        input = frame(Uint8Array.from({ length: random(40) }, () => random(256)));
        break;
      default: { // a correct frame around a random well-formed value: reaches the shape check
        const state: Record<string, unknown> = { ...sampleState(1) };
        const field = Object.keys(state)[random(6)];
        state[field] = randomValue(random, 0);
        if (random(3) === 0) state.connections = [randomValue(random, 0)];
        input = frame(anyCbor.encode(random(8) ? state : randomValue(random, 0)));
      }
    }
    try {
      decodeState(input);
      accepted++;
    } catch (err) {
      if (!(err instanceof HandoffStateError)) {
        throw new Error(`input ${i} threw ${err}: ${Array.from(input).join(",")}`);
      }
      assert.doesNotMatch(err.message, /could not be decoded/, `input ${i} hit the catch-all`);
      reasons.set(err.reason, (reasons.get(err.reason) ?? 0) + 1);
    }
  }
  // Every check was reached, not just the first ones.
  for (const reason of ["magic", "version", "length", "checksum", "cbor", "shape"]) {
    assert.ok((reasons.get(reason) ?? 0) > 0, `fuzz never reached "${reason}"`);
  }
  console.log(`fuzz: ${accepted} accepted, refused by reason:`, Object.fromEntries(reasons));
});

/** A well-formed state whose `app` is the raw CBOR item `item` (to reach the tag check). */
function stateWithApp(item: number[]): Uint8Array {
  const marker = "\u0001app item\u0001";
  const s = sampleState(1);
  const payload = cbor.encode({ ...s, app: marker, connections: s.connections.map(toWireRecord) });
  const m = cbor.encode(marker);
  let at = -1;
  for (let i = 0; i + m.length <= payload.length && at < 0; i++) {
    if (m.every((b: number, j: number) => payload[i + j] === b)) at = i;
  }
  assert.ok(at >= 0);
  const out = new Uint8Array(payload.length - m.length + item.length);
  out.set(payload.subarray(0, at));
  out.set(item, at);
  out.set(payload.subarray(at + m.length), at + item.length);
  return frame(out);
}

Deno.test("decodeState() refuses every CBOR tag and simple value the encoder never writes", () => {
  // What the encoder writes still decodes: a bignum (tag 2 over bytes), undefined, a float.
  assert.equal(decodeState(stateWithApp([0xc2, 0x41, 0x05])).app, 5n);
  assert.equal(decodeState(stateWithApp([0xf7])).app, undefined);
  assert.equal(decodeState(stateWithApp([0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0])).app, 1.5);
  const refused: [string, number[]][] = [
    ["tag 64 (a Uint8Array cbor-x would build)", [0xd8, 0x40, 0x42, 0x01, 0x02]],
    ["tag 1 (a Date)", [0xc1, 0x1a, 0, 0, 0, 0]],
    ["tag 28 (a shared reference)", [0xd8, 0x1c, 0x80]],
    ["tag 29 (a reference back)", [0x82, 0xd8, 0x1c, 0x80, 0xd8, 0x1d, 0x00]],
    ["tag 259 (a Map)", [0xd9, 0x01, 0x03, 0xa0]],
    ["tag 258 (a Set)", [0xd9, 0x01, 0x02, 0x80]],
    ["tag 27 (a constructed object)", [0xd8, 0x1b, 0x82, 0x65, 0x45, 0x72, 0x72, 0x6f, 0x72, 0x80]],
    ["tag 105 (a record definition)", [0xd8, 0x69, 0x80]],
    ["tag 2 over a non-byte-string", [0xc2, 0x05]],
    ["tag 55799 (self-described CBOR)", [0xd9, 0xd9, 0xf7, 0x05]],
    ["simple value 0", [0xe0]],
    ["simple value 255", [0xf8, 0xff]],
  ];
  for (const [what, item] of refused) {
    assert.throws(() => decodeState(stateWithApp(item)), (err: unknown) => {
      assert.ok(err instanceof HandoffStateError, `${what}: ${err}`);
      assert.equal(err.reason, "cbor", `${what}: ${err.message}`);
      assert.match(err.message, /tag \d+ at offset|simple value/, what);
      return true;
    }, what);
  }
});
