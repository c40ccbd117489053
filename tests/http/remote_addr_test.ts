/**
 * `info.remoteAddr` names the client that sent the request, whenever the handler reads it: the
 * address is captured at accept, never asked of an fd that may have been closed and given to
 * the next client.
 */
import assert from "node:assert/strict";
import { serveFixture } from "../_proc.ts";
import { RawClient } from "../_net.ts";
import { sleep } from "../_poll.ts";

/** A client that sends `request`, then resets the connection (SO_LINGER 0); its local port. */
async function sendAndReset(port: number, request: string): Promise<number> {
  const script = `
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", ${port}))
print(s.getsockname()[1], flush=True)
s.sendall(${JSON.stringify(request)}.encode())
time.sleep(0.2)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
`;
  const out = await new Deno.Command("python3", { args: ["-c", script], stderr: "inherit" })
    .output();
  assert.equal(out.code, 0);
  return Number(new TextDecoder().decode(out.stdout).trim());
}

Deno.test("HttpConnection.remoteAddr is the client's own after it reset and its fd was reused", async () => {
  await using srv = await serveFixture("remote_addr.ts");
  const gonePort = await sendAndReset(
    srv.port,
    "GET /late?id=a&ms=1000 HTTP/1.1\r\nHost: t\r\n\r\n",
  );
  await sleep(100);
  // The next client most likely gets the fd number the reset one had.
  using next = await RawClient.connect(srv.port);
  await next.write("GET / HTTP/1.1\r\nHost: t\r\n\r\n");
  const nextAddr = JSON.parse((await next.readResponse()).body);
  assert.notEqual(nextAddr.port, gonePort);
  await sleep(1200);
  using probe = await RawClient.connect(srv.port);
  await probe.write("GET /seen?id=a HTTP/1.1\r\nHost: t\r\n\r\n");
  const seen = JSON.parse((await probe.readResponse()).body);
  assert.deepEqual(seen, { transport: "tcp", hostname: "127.0.0.1", port: gonePort });
});
