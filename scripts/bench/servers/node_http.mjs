// Baseline: node:http hello world (run by Node.js, the machine's own) on the given port.
import http from "node:http";
http.createServer((_req, res) => {
  res.writeHead(200, { "content-type": "text/plain;charset=UTF-8" });
  res.end("Hello, World!");
}).listen(Number(process.argv[2]), "127.0.0.1");
