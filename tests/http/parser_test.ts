/**
 * parseRequestHead() and ChunkedDecoder: exact bytes in, a head or a typed refusal out.
 * Socket-free; the same defences are checked over real sockets in server_defences_test.ts.
 */
import assert from "node:assert/strict";
import { parseRequestHead } from "../../runtime/http/parser.ts";
import { ChunkedDecoder } from "../../runtime/http/chunked.ts";
import { HttpError } from "../../runtime/http/errors.ts";
import { DEFAULT_LIMITS, type HttpLimits } from "../../runtime/http/limits.ts";

const enc = new TextEncoder();

function parse(text: string, limits: HttpLimits = DEFAULT_LIMITS) {
  const r = parseRequestHead(enc.encode(text), 0, limits);
  if (r.kind !== "head") throw new Error(`incomplete: resume at ${r.resumeAt}`);
  return r;
}

function refuses(text: string, reason: string, status: number, limits = DEFAULT_LIMITS) {
  assert.throws(() => parseRequestHead(enc.encode(text), 0, limits), (err: unknown) => {
    assert.ok(err instanceof HttpError, String(err));
    assert.equal(err.reason, reason, `${JSON.stringify(text)}: ${err.message}`);
    assert.equal(err.status, status);
    return true;
  });
}

Deno.test("parseRequestHead() parses method, target, version and fields", () => {
  const r = parse(
    "POST /a?b=1 HTTP/1.1\r\nHost: example.com\r\nX-A:  spaced value \t\r\nContent-Length: 5\r\n\r\nhello",
  );
  assert.equal(r.head.method, "POST");
  assert.equal(r.head.target, "/a?b=1");
  assert.equal(r.head.minor, 1);
  assert.deepEqual(r.head.headers, [["host", "example.com"], ["x-a", "spaced value"], [
    "content-length",
    "5",
  ]]);
  assert.equal(r.head.contentLength, 5);
  assert.equal(r.head.isKeepAlive, true);
  assert.equal(
    enc.encode(
      "POST /a?b=1 HTTP/1.1\r\nHost: example.com\r\nX-A:  spaced value \t\r\nContent-Length: 5\r\n\r\n",
    ).length,
    r.length,
  );
});

Deno.test("parseRequestHead() ignores empty lines before the request line (RFC 9112 §2.2)", () => {
  const r = parse("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
  assert.equal(r.head.method, "GET");
  assert.equal(r.length, enc.encode("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n").length);
});

Deno.test("parseRequestHead() asks for more bytes and resumes without rescanning", () => {
  const full = enc.encode("GET /x HTTP/1.1\r\nHost: a\r\nX-Long: " + "v".repeat(100) + "\r\n\r\n");
  let resumeAt = 0;
  for (let n = 1; n < full.length; n++) {
    const r = parseRequestHead(full.subarray(0, n), resumeAt, DEFAULT_LIMITS);
    assert.equal(r.kind, "more", `at ${n}`);
    if (r.kind === "more") {
      assert.ok(r.resumeAt >= resumeAt);
      resumeAt = r.resumeAt;
    }
  }
  const r = parseRequestHead(full, resumeAt, DEFAULT_LIMITS);
  assert.equal(r.kind, "head");
});

Deno.test("parseRequestHead() keep-alive rules for HTTP/1.0 and 1.1 (RFC 9112 §9.3)", () => {
  assert.equal(parse("GET / HTTP/1.0\r\n\r\n").head.isKeepAlive, false);
  assert.equal(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").head.isKeepAlive, true);
  assert.equal(
    parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").head.isKeepAlive,
    false,
  );
  assert.equal(
    parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, CLOSE\r\n\r\n").head.isKeepAlive,
    false,
  );
  assert.equal(parse("GET / HTTP/1.2\r\nHost: a\r\n\r\n").head.minor, 1);
});

Deno.test("parseRequestHead() reads chunked framing and upgrade requests", () => {
  const r = parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n");
  assert.equal(r.head.isChunked, true);
  assert.equal(r.head.contentLength, -1);
  const u = parse(
    "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
  );
  assert.equal(u.head.upgrade, "websocket");
});

Deno.test("parseRequestHead() keeps obs-text in field values as latin-1", () => {
  const bytes = new Uint8Array([
    ...enc.encode("GET / HTTP/1.1\r\nHost: a\r\nX-B: caf"),
    0xe9,
    ...enc.encode("\r\n\r\n"),
  ]);
  const r = parseRequestHead(bytes, 0, DEFAULT_LIMITS);
  assert.equal(r.kind, "head");
  if (r.kind === "head") assert.equal(r.head.headers[1][1], "caf\u00e9");
});

Deno.test("parseRequestHead() refuses smuggling vectors and malformed heads", () => {
  const h = "Host: a\r\n";
  refuses(
    `POST / HTTP/1.1\r\n${h}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n`,
    "content-length-with-transfer-encoding",
    400,
  );
  refuses(
    `POST / HTTP/1.1\r\n${h}Content-Length: 5\r\nContent-Length: 6\r\n\r\n`,
    "duplicate-content-length",
    400,
  );
  refuses(
    `POST / HTTP/1.1\r\n${h}Content-Length: 5\r\nContent-Length: 5\r\n\r\n`,
    "duplicate-content-length",
    400,
  );
  refuses(`POST / HTTP/1.1\r\n${h}Content-Length: 5, 5\r\n\r\n`, "bad-content-length", 400);
  refuses(`POST / HTTP/1.1\r\n${h}Content-Length: -1\r\n\r\n`, "bad-content-length", 400);
  refuses(`POST / HTTP/1.1\r\n${h}Content-Length: +5\r\n\r\n`, "bad-content-length", 400);
  refuses(`POST / HTTP/1.1\r\n${h}Content-Length: 0x10\r\n\r\n`, "bad-content-length", 400);
  refuses(`POST / HTTP/1.1\r\n${h}Transfer-Encoding: gzip\r\n\r\n`, "bad-transfer-encoding", 400);
  refuses(
    `POST / HTTP/1.1\r\n${h}Transfer-Encoding: chunked, gzip\r\n\r\n`,
    "bad-transfer-encoding",
    400,
  );
  refuses(
    `POST / HTTP/1.1\r\n${h}Transfer-Encoding: gzip, chunked\r\n\r\n`,
    "unsupported-transfer-encoding",
    501,
  );
  refuses(
    `POST / HTTP/1.1\r\n${h}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n`,
    "bad-transfer-encoding",
    400,
  );
  refuses(`POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n`, "bad-transfer-encoding", 400);
  refuses(`GET / HTTP/1.1\r\n${h}X-Folded: a\r\n b\r\n\r\n`, "obs-fold", 400);
  refuses(`GET / HTTP/1.1\r\n${h}X-Bad : a\r\n\r\n`, "bad-header", 400);
  refuses(`GET / HTTP/1.1\r\n${h}X(Bad): a\r\n\r\n`, "bad-header", 400);
  refuses(`GET / HTTP/1.1\r\n${h}: no name\r\n\r\n`, "bad-header", 400);
  refuses(`GET / HTTP/1.1\r\n${h}X-Nul: a\x00b\r\n\r\n`, "bad-header", 400);
  refuses(`GET / HTTP/1.1\r\n${h}X-Cr: a\rb\r\n\r\n`, "bad-header", 400);
  refuses(`GET / HTTP/1.1\r\n${h}X-Lf: a\nb\r\n\r\n`, "bad-header", 400);
  refuses(`GET / HTTP/1.1\r\n${h}X-Del: a\x7fb\r\n\r\n`, "bad-header", 400);
  refuses(`GET / HTTP/1.1\r\n\r\n`, "missing-host", 400);
  refuses(`GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`, "duplicate-host", 400);
  refuses(`GET / HTTP/1.1\r\nHost: a b\r\n\r\n`, "bad-header", 400);
  refuses(`GET / HTTP/1.1\r\nHost: a/b\r\n\r\n`, "bad-header", 400);
  refuses(`GET  / HTTP/1.1\r\n${h}\r\n`, "bad-request-line", 400);
  refuses(`GET / HTTP/1.1 \r\n${h}\r\n`, "bad-request-line", 400);
  refuses(`G@T / HTTP/1.1\r\n${h}\r\n`, "bad-request-line", 400);
  refuses(`GET /a\x01 HTTP/1.1\r\n${h}\r\n`, "bad-request-line", 400);
  refuses(`GET / HTTP/1.1\n${h}\r\n`, "bad-request-line", 400);
  refuses(`GET / HTTP/1.1\r\nHost: a\n\r\n`, "bad-header", 400);
  refuses(`GET / HTTX/1.1\r\n${h}\r\n`, "bad-version", 400);
  refuses(`GET / HTTP/1.10\r\n${h}\r\n`, "bad-request-line", 400);
  refuses(`GET / HTTP/2.0\r\n${h}\r\n`, "unsupported-version", 505);
  refuses(`GET / HTTP/0.9\r\n${h}\r\n`, "unsupported-version", 505);
});

Deno.test("parseRequestHead() enforces the size and count limits as soon as they are crossed", () => {
  const limits = {
    ...DEFAULT_LIMITS,
    maxRequestLineBytes: 64,
    maxHeadBytes: 256,
    maxHeaderCount: 3,
  };
  refuses(`GET /${"a".repeat(100)} HTTP/1.1\r\nHost: a\r\n\r\n`, "uri-too-long", 414, limits);
  // Still incomplete, but already too long: refused without waiting for the end.
  refuses(`GET /${"a".repeat(100)}`, "uri-too-long", 414, limits);
  refuses(`GET / HTTP/1.1\r\nHost: a\r\nX: ${"b".repeat(300)}`, "headers-too-large", 431, limits);
  refuses(
    `GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n`,
    "too-many-headers",
    431,
    limits,
  );
  refuses("\r\n".repeat(200), "headers-too-large", 431, limits);
});

function decodeChunked(text: string, limits = DEFAULT_LIMITS, splits = [Infinity]) {
  const d = new ChunkedDecoder(limits);
  const bytes = enc.encode(text);
  let out = "";
  let used = 0;
  let from = 0;
  for (const size of splits) {
    const to = Math.min(bytes.length, from + size);
    used += d.push(bytes, from, to, (c) => out += new TextDecoder().decode(c));
    from = to;
    if (d.isDone || from === bytes.length) break;
  }
  return { out, used, isDone: d.isDone };
}

Deno.test("ChunkedDecoder decodes sizes, extensions and trailers, byte by byte too", () => {
  const body =
    "4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: v\r\n\r\nNEXT";
  const r = decodeChunked(body);
  assert.equal(r.out, "Wikipedia in\r\n\r\nchunks.");
  assert.equal(r.isDone, true);
  assert.equal(r.used, body.length - 4);
  const slow = decodeChunked(body, DEFAULT_LIMITS, Array(body.length).fill(1));
  assert.equal(slow.out, r.out);
  assert.equal(slow.used, r.used);
});

Deno.test("ChunkedDecoder refuses malformed framing and oversized bodies", () => {
  const bad = (text: string, reason: string, limits = DEFAULT_LIMITS) =>
    assert.throws(() => decodeChunked(text, limits), (err: unknown) => {
      assert.ok(err instanceof HttpError);
      assert.equal(err.reason, reason, `${JSON.stringify(text)}: ${err.message}`);
      return true;
    });
  bad("x\r\n", "bad-chunk");
  bad(" 4\r\nWiki\r\n0\r\n\r\n", "bad-chunk");
  bad("4\r\nWikiXX0\r\n\r\n", "bad-chunk");
  bad("4\nWiki\r\n0\r\n\r\n", "bad-chunk");
  bad("4\r\nWiki\n0\r\n\r\n", "bad-chunk");
  bad("4;a\x00\r\nWiki\r\n", "bad-chunk");
  bad("fffffffffffffffff\r\n", "bad-chunk");
  bad("0\r\nBad Trailer\r\n\r\n", "bad-chunk");
  bad("0\r\nX: a\nb\r\n\r\n", "bad-chunk");
  bad("a\r\n0123456789\r\n0\r\n\r\n", "body-too-large", { ...DEFAULT_LIMITS, maxBodyBytes: 9 });
});

Deno.test("parseRequestHead() refuses a CR not followed by LF at the end of a line", () => {
  refuses(`GET / HTTP/1.1\r\nHost: a\r\nX: a\r\rContent-Length: 5\r\n\r\n`, "bad-header", 400);
  refuses(
    `GET / HTTP/1.1\r\nHost: a\r\nX: a\rZTransfer-Encoding: chunked\r\n\r\n`,
    "bad-header",
    400,
  );
  refuses(`GET / HTTP/1.1\rXContent-Length: 3\r\nHost: a\r\n\r\n`, "bad-request-line", 400);
  refuses(`GET / HTTP/1.1\r\rHost: a\r\n\r\n`, "bad-request-line", 400);
});

Deno.test("ChunkedDecoder holds chunk extensions to their grammar (RFC 9112 §7.1.1)", () => {
  const accepts = (line: string) => {
    const text = `${line}\r\nhello\r\n0\r\n\r\n`;
    for (const splits of [[Infinity], Array(text.length).fill(1)]) {
      const r = decodeChunked(text, DEFAULT_LIMITS, splits);
      assert.equal(r.out, "hello", JSON.stringify(line));
      assert.equal(r.isDone, true, JSON.stringify(line));
    }
  };
  accepts("5");
  accepts("5;a");
  accepts("5;a=b");
  accepts("5 ;a");
  accepts("5\t; a = b ; c");
  accepts('5;a="x y\\"z";b');
  accepts("5;a=b;c=d");
  const bad = (line: string) =>
    assert.throws(() => decodeChunked(`${line}\r\nhello\r\n0\r\n\r\n`), (err: unknown) => {
      assert.ok(err instanceof HttpError);
      assert.equal(err.reason, "bad-chunk", `${JSON.stringify(line)}: ${err.message}`);
      return true;
    });
  bad("5 garbage");
  bad("5garbage");
  bad("5;");
  bad("5; ");
  bad("5;;a");
  bad("5;=b");
  bad("5;a=");
  bad("5;a b");
  bad("5;a=b c");
  bad('5;a="x');
  bad("5;a=(b)");
  bad("5 ");
  bad("5;a\x7f");
});
