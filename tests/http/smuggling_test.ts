/**
 * Request-smuggling regressions over a real socket: bytes that a lenient parser reads as a
 * different request (a bare CR that hides the byte after it; a chunk-size line with junk after
 * the digits) must be answered 400 and the connection closed, with nothing behind them served.
 */
import assert from "node:assert/strict";
import { serveFixture } from "../_proc.ts";
import { RawClient } from "../_net.ts";

/** Sends `bytes` and reads until the server closes: the whole answer, as latin-1 text. */
async function answerTo(port: number, bytes: string): Promise<string> {
  using c = await RawClient.connect(port);
  await c.write(bytes);
  return await c.readToEnd(5000);
}

/** One response, status 400, `Connection: close`, and no second response behind it. */
function assertOneRefusal(answer: string, what: string): void {
  const statusLines = answer.match(/^HTTP\/1\.1 \d{3} .*$/gm) ?? [];
  assert.deepEqual(statusLines, ["HTTP/1.1 400 Bad Request"], `${what}: ${JSON.stringify(answer)}`);
  assert.match(answer, /\r\nconnection: close\r\n/, what);
}

Deno.test("parseRequestHead() refuses a bare CR anywhere in the head (request smuggling)", async () => {
  await using srv = await serveFixture("echo.ts");
  const second = "GET /second HTTP/1.1\r\nHost: a\r\n\r\n";
  // The CR at the end of "X: a" hid the next CR: "Content-Length: 5" became a field and
  // "hello" a body, so the request after it was served as a second one.
  assertOneRefusal(
    await answerTo(
      srv.port,
      `GET / HTTP/1.1\r\nHost: a\r\nX: a\r\rContent-Length: 5\r\n\r\nhello${second}`,
    ),
    "CR CR after a field value",
  );
  assertOneRefusal(
    await answerTo(
      srv.port,
      `POST /echo HTTP/1.1\r\nHost: a\r\nX: a\rZTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${second}`,
    ),
    "CR + byte after a field value",
  );
  assertOneRefusal(
    await answerTo(srv.port, `GET / HTTP/1.1\rXContent-Length: 3\r\nHost: a\r\n\r\nabc${second}`),
    "CR + byte after the request line",
  );
});

Deno.test("ChunkedDecoder refuses junk after a chunk size and an empty extension", async () => {
  await using srv = await serveFixture("echo.ts");
  const pre = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  const second = "GET /second HTTP/1.1\r\nHost: a\r\n\r\n";
  for (const line of ["5 garbage", "5garbage", "5;", "5; ;a", "5;a=", "5 "]) {
    assertOneRefusal(
      await answerTo(srv.port, `${pre}${line}\r\nhello\r\n0\r\n\r\n${second}`),
      JSON.stringify(line),
    );
  }
  // Extensions that follow the grammar are still accepted (and ignored).
  using c = await RawClient.connect(srv.port);
  await c.write(`${pre}5 ; a = "b c" ;d\r\nhello\r\n0\r\n\r\n`);
  const r = await c.readResponse();
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).body, "hello");
});
