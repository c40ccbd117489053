/**
 * RFC 6455 at the socket, against the real server: the opening handshake (a bad upgrade gets
 * 400 or 426 naming version 13; permessage-deflate offered is not negotiated), the failures
 * that close the connection with their code (unmasked frame 1002, invalid UTF-8 1007, a
 * message over the limit 1009), and the closing handshake (the client's code echoed, TCP
 * closed by the server).
 */
import assert from "node:assert/strict";
import { serveFixture } from "../_proc.ts";
import { RawClient } from "../_net.ts";
import { clientFrame, closeOf, RawWs, upgradeRequest } from "./_sessions.ts";

const TEXT = 0x1;
const BINARY = 0x2;
const CONTINUATION = 0x0;
const CLOSE = 0x8;

/** Reads the server's close frame, checks its code, and that the server then closes TCP. */
async function expectFailure(ws: RawWs, code: number): Promise<void> {
  const f = await ws.read();
  assert.equal(closeOf(f).code, code, `close reason: ${closeOf(f).reason}`);
  assert.ok(f.payload.length <= 125, "a control frame's payload fits in 125 bytes");
  assert.equal(await ws.isClosedByServer(), true, "the server closes TCP after failing");
}

Deno.test("upgradeWebSocket() answers a bad upgrade: no key 400, wrong version 426 naming 13", async () => {
  await using srv = await serveFixture("sessions_counter.ts");
  using c = await RawClient.connect(srv.port);
  await c.write(upgradeRequest("/ws", { "Sec-WebSocket-Key": null }));
  const noKey = await c.readResponse();
  assert.equal(noKey.status, 400);
  assert.equal(noKey.body, "Invalid Header: 'sec-websocket-key' header must be set\n"); // Deno's
  assert.equal(noKey.headers.get("upgrade"), null);
  // The connection is still plain HTTP: nothing switched.
  await c.write(upgradeRequest("/ws", { "Sec-WebSocket-Version": "8" }));
  const badVersion = await c.readResponse();
  assert.equal(badVersion.status, 426);
  assert.deepEqual(
    badVersion.rawHeaders.filter(([k]) => k.toLowerCase() === "sec-websocket-version"),
    [["sec-websocket-version", "13"]],
  );
  await c.write("GET / HTTP/1.1\r\nHost: sessions.test\r\n\r\n");
  assert.equal((await c.readResponse()).status, 200, "keep-alive after the refusals");
});

Deno.test("examples/chat.ts regression: a bad upgrade got 500 and a stack trace; now 426", async () => {
  await using srv = await serveFixture("../../examples/chat.ts");
  using c = await RawClient.connect(srv.port);
  await c.write(upgradeRequest("/ws?room=r&name=n", { "Sec-WebSocket-Version": "8" }));
  const res = await c.readResponse();
  assert.equal(res.status, 426);
  assert.equal(res.headers.get("sec-websocket-version"), "13");
  assert.doesNotMatch(srv.proc.log, /TypeError|handler failed/);
});

Deno.test("permessage-deflate offered is not negotiated; a compressed (RSV1) frame fails 1002", async () => {
  await using srv = await serveFixture("sessions_counter.ts");
  using ws = await RawWs.open(srv.port, "/ws?id=deflate", {
    "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
  });
  // RFC 6455 §4.2.2 step 5.4, example key from §1.3.
  assert.equal(ws.response.headers.get("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  assert.equal(ws.response.headers.get("sec-websocket-extensions"), null, "none accepted");
  await ws.write(clientFrame({ opcode: TEXT, payload: "c 1" }));
  assert.equal((await ws.readText()).split(" ")[0], "a", "uncompressed frames work");
  // §5.2: RSV1 without a negotiated extension fails the connection.
  await ws.write(clientFrame({ opcode: TEXT, rsv: 0b100, payload: "c 2" }));
  await expectFailure(ws, 1002);
});

Deno.test("an unmasked client frame fails the connection with 1002", async () => {
  await using srv = await serveFixture("sessions_counter.ts");
  using ws = await RawWs.open(srv.port, "/ws?id=unmasked");
  await ws.write(clientFrame({ opcode: TEXT, payload: "c 1", mask: null }));
  await expectFailure(ws, 1002);
});

Deno.test("invalid UTF-8 in a text message fails the connection with 1007", async () => {
  await using srv = await serveFixture("sessions_counter.ts");
  using ws = await RawWs.open(srv.port, "/ws?id=utf8");
  // Valid first fragment, then a lone continuation byte in the second (§8.1: checked per
  // message, fragments included).
  await ws.write(clientFrame({ opcode: TEXT, fin: false, payload: "c " }));
  await ws.write(
    clientFrame({ opcode: CONTINUATION, payload: new Uint8Array([0x31, 0x80]) }),
  );
  await expectFailure(ws, 1007);
});

Deno.test("a message over maxMessageSize fails with 1009, whole or in fragments", async () => {
  await using srv = await serveFixture("sessions_counter.ts");
  {
    using ws = await RawWs.open(srv.port, "/ws?id=big&max=1024");
    await ws.write(clientFrame({ opcode: BINARY, payload: new Uint8Array(1024) }));
    assert.equal((await ws.read()).payload.length, 1024, "exactly the limit is fine");
    await ws.write(clientFrame({ opcode: BINARY, payload: new Uint8Array(1025) }));
    await expectFailure(ws, 1009);
  }
  {
    using ws = await RawWs.open(srv.port, "/ws?id=big-fragments&max=1024");
    await ws.write(clientFrame({ opcode: BINARY, fin: false, payload: new Uint8Array(600) }));
    await ws.write(clientFrame({ opcode: CONTINUATION, payload: new Uint8Array(600) }));
    await expectFailure(ws, 1009);
  }
});

Deno.test("closing handshake: the client's code is echoed and the server closes TCP", async () => {
  await using srv = await serveFixture("sessions_counter.ts");
  {
    using ws = await RawWs.open(srv.port, "/ws?id=close");
    const payload = new Uint8Array([0x0f, 0xa1, ...new TextEncoder().encode("bye")]); // 4001
    await ws.write(clientFrame({ opcode: CLOSE, payload }));
    assert.equal(closeOf(await ws.read()).code, 4001);
    assert.equal(await ws.isClosedByServer(), true, "§7.1.1: the server closes TCP first");
  }
  {
    using ws = await RawWs.open(srv.port, "/ws?id=close-empty");
    await ws.write(clientFrame({ opcode: CLOSE }));
    const f = await ws.read();
    assert.equal(f.opcode, CLOSE);
    assert.equal(f.payload.length, 0, "a close without a code is answered without one");
    assert.equal(await ws.isClosedByServer(), true);
  }
});
