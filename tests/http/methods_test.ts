/**
 * Methods and bodies as Deno.serve hands them to a handler: the same raw bytes go to apprun
 * and to a Deno.serve running the same handler, and the handler must see the same method and
 * body in both. Any token is a method (RFC 9110 §9.1: case-sensitive, unknown ones are the
 * handler's to answer); content in a GET or HEAD has no defined meaning (§9.3.1): both drop it
 * (`req.body` is null) but honour its framing.
 */
import assert from "node:assert/strict";
import { DENO, FIXTURES, serveFixture, spawn } from "../_proc.ts";
import { RawClient } from "../_net.ts";

interface Seen {
  status: number;
  method?: string;
  body?: string;
}

/** Sends `bytes` and returns what the echo handler saw (status alone when refused). */
async function seen(port: number, bytes: string): Promise<Seen> {
  using c = await RawClient.connect(port);
  await c.write(bytes);
  const r = await c.readResponse();
  if (r.status !== 200) return { status: r.status };
  const { method, body } = JSON.parse(r.body);
  return { status: r.status, method, body };
}

const CASES = [
  "M-SEARCH /echo HTTP/1.1\r\nHost: a\r\n\r\n",
  "PROPFIND /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nHELLO",
  "get /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nHELLO",
  "head /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nHELLO",
  "Post /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nHELLO",
  "TRACE /echo HTTP/1.1\r\nHost: a\r\n\r\n",
  "track /echo HTTP/1.1\r\nHost: a\r\n\r\n",
  "GET /echo HTTP/1.0\r\nconTENT-Length: 5\r\n\r\nHELLO",
  "GET /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHELLO\r\n0\r\n\r\n",
];

Deno.test("Exchange gives the handler any token method and its body, as Deno.serve does", async () => {
  await using apprun = await serveFixture("echo.ts");
  await using deno = spawn(DENO, ["run", "-A", `${FIXTURES}/deno_serve.ts`, "echo.ts"]);
  const denoPort = Number((await deno.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/))[1]);
  for (const bytes of CASES) {
    const want = await seen(denoPort, bytes);
    assert.deepEqual(await seen(apprun.port, bytes), want, JSON.stringify(bytes));
  }
  // The facts the comparison stands on, spelled out.
  assert.deepEqual(await seen(apprun.port, CASES[0]), {
    status: 200,
    method: "M-SEARCH",
    body: "",
  });
  assert.deepEqual(await seen(apprun.port, CASES[2]), {
    status: 200,
    method: "get",
    body: "HELLO",
  });
  assert.deepEqual(await seen(apprun.port, CASES[7]), { status: 200, method: "GET", body: "" });
});

Deno.test("Exchange reads a GET's dropped body so the request behind it is parsed at its start", async () => {
  await using srv = await serveFixture("echo.ts");
  using c = await RawClient.connect(srv.port);
  await c.write(
    "GET /echo HTTP/1.1\r\nHost: a\r\nconTENT-Length: 5\r\n\r\nHELLO" +
      "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok",
  );
  const first = await c.readResponse();
  assert.equal(JSON.parse(first.body).body, "");
  const second = await c.readResponse();
  assert.equal(JSON.parse(second.body).method, "POST");
  assert.equal(JSON.parse(second.body).body, "ok");
});
