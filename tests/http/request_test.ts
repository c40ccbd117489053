/**
 * The Request a handler gets (runtime/http/request.ts): the same URL, headers and method as
 * Deno.serve gives for the same raw bytes, side by side; and the same answers when the handler
 * reads them late — after an await, or from a Request kept past its turn — while the
 * connection's read buffer has since carried other requests (the head's strings are cut from
 * those bytes until the Request outlives its turn).
 */
import assert from "node:assert/strict";
import { DENO, FIXTURES, serveFixture, spawn } from "../_proc.ts";
import { RawClient } from "../_net.ts";

/**
 * Sends `text` (one byte per character: latin-1) on a fresh connection; returns the JSON body
 * of a 200, else the status.
 */
async function ask(port: number, text: string): Promise<unknown> {
  using c = await RawClient.connect(port);
  await c.write(Uint8Array.from(text, (ch) => ch.charCodeAt(0)));
  const r = await c.readResponse();
  return r.status === 200 ? JSON.parse(r.body) : { status: r.status };
}

const CASES = [
  "GET /a/../b/./c?x=%zz&y=1#f HTTP/1.1\r\nHost: EXAMPLE.com:8080\r\nX-Dup: 1\r\nx-dup: 2\r\n\r\n",
  "GET http://Other.COM:80/p/./q HTTP/1.1\r\nHost: a\r\n\r\n",
  "OPTIONS * HTTP/1.1\r\nHost: a:1\r\n\r\n",
  "M-SEARCH /%7e;a HTTP/1.1\r\nHost: a\r\nUser-Agent: t/1\r\nAccept: */*\r\n\r\n",
  "GET / HTTP/1.1\r\nHost: a\r\nX-Latin: caf\xe9\r\nX-Empty:\r\n\r\n",
  "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok",
];

Deno.test("Exchange gives the handler Deno.serve's URL, headers and method for the same bytes", async () => {
  await using apprun = await serveFixture("request_view.ts");
  await using deno = spawn(DENO, ["run", "-A", `${FIXTURES}/deno_serve.ts`, "request_view.ts"]);
  const denoPort = Number((await deno.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/))[1]);
  for (const bytes of CASES) {
    assert.deepEqual(await ask(apprun.port, bytes), await ask(denoPort, bytes), bytes);
  }
  // The facts the comparison stands on, spelled out.
  assert.deepEqual(await ask(apprun.port, CASES[0]), {
    method: "GET",
    url: "http://EXAMPLE.com:8080/a/../b/./c?x=%zz&y=1#f",
    headers: [["host", "EXAMPLE.com:8080"], ["x-dup", "1, 2"]],
    host: "EXAMPLE.com:8080",
    dup: "1, 2",
    hasMissing: false,
    isMutable: false,
    hasBody: false,
  });
});

Deno.test("Exchange keeps a Request's head when it outlives its turn on the connection", async () => {
  await using srv = await serveFixture("request_view.ts");
  // A Request kept by the app, read after other connections' bytes went through the buffer.
  await ask(srv.port, "KEEP /keep?k=1 HTTP/1.1\r\nHost: kept.example\r\nX-Dup: kept\r\n\r\n");
  for (let i = 0; i < 5; i++) {
    await ask(
      srv.port,
      `GET /other${i}?${"z".repeat(40)} HTTP/1.1\r\nHost: zz\r\nX-Dup: zzzz\r\n\r\n`,
    );
  }
  const kept = await ask(srv.port, "KEPT / HTTP/1.1\r\nHost: a\r\n\r\n") as Record<
    string,
    unknown
  >;
  assert.deepEqual([kept.url, kept.dup], ["http://kept.example/keep?k=1", "kept"]);
  // A handler that reads its Request after an await, with the next request pipelined behind it
  // in the same read and another connection's request read meanwhile.
  using c = await RawClient.connect(srv.port);
  await c.write(
    "LATER /later?a=1 HTTP/1.1\r\nHost: first\r\nX-Dup: one\r\n\r\n" +
      "LATER /later?b=2 HTTP/1.1\r\nHost: second\r\nX-Dup: two\r\n\r\n",
  );
  await ask(
    srv.port,
    `GET /${"q".repeat(60)} HTTP/1.1\r\nHost: qqqqqqqqqqqq\r\nX-Dup: qqq\r\n\r\n`,
  );
  const first = JSON.parse((await c.readResponse()).body);
  const second = JSON.parse((await c.readResponse()).body);
  assert.deepEqual([first.url, first.dup], ["http://first/later?a=1", "one"]);
  assert.deepEqual([second.url, second.dup], ["http://second/later?b=2", "two"]);
});
