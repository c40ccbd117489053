/**
 * `Deno.upgradeWebSocket` under apprun fails as it fails under Deno: the same app
 * (tests/fixtures/upgrade_errors.ts, which answers `String(err)`) runs under
 * `deno run` and under `apprun serve`, and each bad upgrade gets the same TypeError from both.
 * Before, apprun's engine let Deno's own function fail silently (the client saw "Invalid
 * connection header", the server logged nothing). Where RFC 6455 §4.2.1 refuses what Deno lets
 * through, apprun refuses it with a TypeError of its own.
 */
import assert from "node:assert/strict";
import { DENO, FIXTURES, serveFixture, spawn } from "../_proc.ts";
import { RawClient } from "../_net.ts";
import { upgradeRequest } from "../sessions/_sessions.ts";

const FIXTURE = "upgrade_errors.ts";

/** One request on a fresh connection: `<status> <body>`. */
async function answer(port: number, request: string): Promise<string> {
  using c = await RawClient.connect(port);
  await c.write(request);
  const res = await c.readResponse(5000, { isHead: false });
  return `${res.status} ${res.status === 101 ? "" : res.body}`.trim();
}

/** Requests both must answer alike: Deno throws for each (or accepts it). */
const SAME: [string, string][] = [
  ["a plain GET", "GET / HTTP/1.1\r\nHost: t\r\n\r\n"],
  ["Upgrade: h2c", upgradeRequest("/", { Upgrade: "h2c" })],
  ["no Connection", upgradeRequest("/", { Connection: null })],
  ["Connection: keep-alive", upgradeRequest("/", { Connection: "keep-alive" })],
  ["no Sec-WebSocket-Key", upgradeRequest("/", { "Sec-WebSocket-Key": null })],
  ["a protocol not offered", upgradeRequest("/?protocol=chat")],
  [
    "a protocol offered",
    upgradeRequest("/?protocol=chat", { "Sec-WebSocket-Protocol": "a, chat" }),
  ],
  ["a good upgrade", upgradeRequest("/")],
];

Deno.test("Deno.upgradeWebSocket() throws under apprun what it throws under Deno", async () => {
  const deno = spawn(DENO, ["run", "-A", `${FIXTURES}/${FIXTURE}`], { env: { PORT: "0" } });
  try {
    const m = await deno.waitFor(/Listening on http:\/\/127\.0\.0\.1:(\d+)\//);
    const denoPort = Number(m[1]);
    await using served = await serveFixture(FIXTURE);
    for (const [what, request] of SAME) {
      const expected = await answer(denoPort, request);
      assert.equal(await answer(served.port, request), expected, what);
    }
    assert.equal(
      await answer(served.port, upgradeRequest("/", { Upgrade: "h2c" })),
      "400 TypeError: Invalid Header: 'upgrade' header must contain 'websocket'",
      "the answers compared are the TypeErrors, not empty",
    );
    // RFC 6455 §4.2.1 asks more than Deno checks: apprun refuses these, with a TypeError too.
    assert.equal(
      await answer(served.port, upgradeRequest("/", { "Sec-WebSocket-Version": "8" })),
      "400 TypeError: Sec-WebSocket-Version must be 13",
    );
    assert.equal(
      await answer(served.port, upgradeRequest("/", { "Sec-WebSocket-Key": "abc" })),
      "400 TypeError: Invalid WebSocket upgrade: Sec-WebSocket-Key is not base64 of 16 bytes",
    );
    assert.doesNotMatch(served.proc.log, /handler failed/);
  } finally {
    deno.kill();
    await deno.wait();
  }
});
