/**
 * @module
 * Tests of the server's opening handshake (RFC 6455 §4.2): the §1.3 example, each rule of
 * §4.2.1 with its status, subprotocol selection, and extensions left unanswered.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  computeAcceptKey,
  type HandshakeOptions,
  isWebSocketUpgrade,
  parseSubprotocols,
  selectSubprotocol,
  validateHandshake,
} from "../../runtime/ws/handshake.ts";
import { sha1 } from "../../runtime/ws/_sha1.ts";
import { seededRandom } from "./_frames.ts";

const SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ==";

function request(
  headers: Record<string, string>,
  overrides: Partial<HandshakeOptions> = {},
): HandshakeOptions {
  return {
    method: "GET",
    httpVersion: "HTTP/1.1",
    headers: new Headers({
      host: "server.example.com",
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-key": SAMPLE_KEY,
      "sec-websocket-version": "13",
      ...headers,
    }),
    ...overrides,
  };
}

Deno.test("computeAcceptKey() gives the RFC 6455 §1.3 answer", () => {
  assert.equal(computeAcceptKey(SAMPLE_KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
});

Deno.test("sha1() matches node:crypto for inputs of every length up to 200 bytes", () => {
  const random = seededRandom(1);
  for (let length = 0; length <= 200; length++) {
    const input = new Uint8Array(length).map(() => Math.floor(random() * 256));
    const expected = createHash("sha1").update(input).digest("hex");
    assert.equal(
      Array.from(sha1(input), (b) => b.toString(16).padStart(2, "0")).join(""),
      expected,
    );
  }
});

Deno.test("validateHandshake() accepts the RFC 6455 §1.3 request", () => {
  const result = validateHandshake(request({}));
  assert.deepEqual(result, {
    ok: true,
    status: 101,
    protocol: null,
    headers: [
      ["Upgrade", "websocket"],
      ["Connection", "Upgrade"],
      ["Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="],
    ],
  });
});

Deno.test("validateHandshake() matches Upgrade and Connection tokens case-insensitively in lists", () => {
  const result = validateHandshake(request({
    upgrade: "h2c, WebSocket",
    connection: "keep-alive, UPGRADE",
  }));
  assert.equal(result.ok, true);
  assert.equal(validateHandshake(request({}, { httpVersion: "1.1" })).ok, true);
});

Deno.test("validateHandshake() answers 400 for each broken §4.2.1 rule", () => {
  const cases: [HandshakeOptions, string][] = [
    [request({}, { method: "POST" }), "method"],
    [request({}, { method: "get" }), "method"],
    [request({}, { httpVersion: "HTTP/1.0" }), "http-version"],
    [request({}, { httpVersion: "HTTP/1" }), "http-version"],
    [request({ host: "" }), "host"],
    [request({ upgrade: "h2c" }), "upgrade"],
    [request({ upgrade: "websocket/13" }), "upgrade"],
    [request({ connection: "keep-alive" }), "connection"],
    [request({ connection: "upgrade-insecure" }), "connection"],
    [request({ "sec-websocket-key": "" }), "key"],
    [request({ "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ" }), "key"], // no padding
    [request({ "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQo=" }), "key"], // 17 bytes
    [request({ "sec-websocket-key": "dGhlIHNhbXBsZSBub25j" }), "key"], // 15 bytes
    [request({ "sec-websocket-key": "dGhlIHNhbXBsZSBub2*jZQ==" }), "key"],
    [request({ "sec-websocket-key": `${SAMPLE_KEY}, ${SAMPLE_KEY}` }), "key"], // two keys
  ];
  for (const [options, reason] of cases) {
    const result = validateHandshake(options);
    assert.equal(result.ok, false, reason);
    if (result.ok) continue;
    assert.equal(result.status, 400);
    assert.equal(result.reason, reason);
    assert.deepEqual(result.headers, []);
  }
  const headers = new Headers(request({}).headers as Headers);
  headers.delete("host");
  const noHost = validateHandshake({ ...request({}), headers });
  assert.equal(!noHost.ok && noHost.reason, "host");
});

Deno.test("validateHandshake() answers 426 with Sec-WebSocket-Version: 13 for other versions", () => {
  const missing = new Headers(request({}).headers as Headers);
  missing.delete("sec-websocket-version");
  for (
    const options of [
      request({ "sec-websocket-version": "8" }),
      request({ "sec-websocket-version": "13, 8" }),
      { ...request({}), headers: missing },
    ]
  ) {
    assert.deepEqual(validateHandshake(options), {
      ok: false,
      status: 426,
      reason: "version",
      message: "Sec-WebSocket-Version must be 13",
      headers: [["Sec-WebSocket-Version", "13"]],
    });
  }
});

Deno.test("validateHandshake() picks the server's preferred offered subprotocol", () => {
  const result = validateHandshake({
    ...request({ "sec-websocket-protocol": "chat, superchat" }),
    protocols: ["superchat", "chat"],
  });
  assert.equal(result.ok && result.protocol, "superchat");
  assert.deepEqual(result.headers.at(-1), ["Sec-WebSocket-Protocol", "superchat"]);
  const none = validateHandshake({
    ...request({ "sec-websocket-protocol": "mqtt" }),
    protocols: ["chat"],
  });
  assert.equal(none.ok && none.protocol, null);
  assert.equal(none.headers.length, 3);
});

Deno.test("validateHandshake() accepts offered extensions by answering none", () => {
  const result = validateHandshake(request({
    "sec-websocket-extensions": "permessage-deflate; client_max_window_bits",
  }));
  assert.equal(result.ok, true);
  assert.ok(!result.headers.some(([name]) => name.toLowerCase() === "sec-websocket-extensions"));
});

Deno.test("parseSubprotocols() and selectSubprotocol() read lists exactly", () => {
  assert.deepEqual(parseSubprotocols(null), []);
  assert.deepEqual(parseSubprotocols(" chat ,, v2.json,"), ["chat", "v2.json"]);
  assert.equal(selectSubprotocol({ offered: ["Chat"], supported: ["chat"] }), null);
  assert.equal(selectSubprotocol({ offered: ["a", "b"], supported: ["b", "a"] }), "b");
  assert.equal(selectSubprotocol({ offered: [], supported: ["a"] }), null);
});

Deno.test("isWebSocketUpgrade() tells a WebSocket request from others", () => {
  assert.equal(isWebSocketUpgrade(new Headers({ upgrade: "WebSocket" })), true);
  assert.equal(isWebSocketUpgrade(new Headers({ upgrade: "h2c" })), false);
  assert.equal(isWebSocketUpgrade(new Headers()), false);
});

Deno.test("validateHandshake() needs only a get() of lower-case names, not a Headers", () => {
  const fields = new Map([
    ["host", "a.example"],
    ["upgrade", "websocket"],
    ["connection", "Upgrade"],
    ["sec-websocket-key", SAMPLE_KEY],
    ["sec-websocket-version", "13"],
  ]);
  const headers = { get: (name: string) => fields.get(name) ?? null };
  const result = validateHandshake({ method: "GET", httpVersion: "HTTP/1.1", headers });
  assert.equal(result.ok, true);
});
