// Baseline: node:http (run by Node.js, the machine's own) on the port given first, serving the
// app named second: "hello" (hello world) or "hono" — the same answer as hono.ts (JSON from a
// path parameter and a request header), routed by hand as plain node:http code would.
import http from "node:http";

const [port, app] = [Number(process.argv[2]), process.argv[3] ?? "hello"];
const USER = /^\/users\/([^/?]+)/;

function hello(_req, res) {
  res.writeHead(200, { "content-type": "text/plain;charset=UTF-8" });
  res.end("Hello, World!");
}

function json(req, res) {
  const m = req.method === "GET" ? USER.exec(req.url) : null;
  if (m === null) {
    res.writeHead(404, { "content-type": "text/plain;charset=UTF-8" });
    return res.end("404 Not Found");
  }
  const body = JSON.stringify({ id: decodeURIComponent(m[1]), agent: req.headers["user-agent"] });
  res.writeHead(200, { "content-type": "application/json" });
  res.end(body);
}

http.createServer(app === "hono" ? json : hello).listen(port, "127.0.0.1");
