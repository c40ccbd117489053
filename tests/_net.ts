/**
 * @module
 * Sockets for tests: a port that is free right now, `RawClient` (a TCP or unix-stream client
 * that writes exact bytes and reads exactly what comes back, with HTTP/1.1 response reading),
 * one-shot helpers on top of it, and how a connection ended. Nothing here mocks a socket; each
 * function says who closes what it opens. What the kernel knows of a connection (queues, who
 * holds it) is `_proc_net.ts`'s; processes are `_proc.ts`'s.
 */
import { withDeadline } from "./_poll.ts";

const enc = new TextEncoder();

/** A port that was free a moment ago on `hostname` (bound to port 0, read, released). */
export function freePort(hostname = "127.0.0.1"): number {
  const l = Deno.listen({ hostname, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A GET request for `path` with a Host header (and `extra` header lines, each ending in CRLF). */
export const GET = (path: string, extra = "") => `GET ${path} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;

/** Bytes as text, one char per byte (exact for any byte, unlike UTF-8 decoding). */
export function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) {
    s += String.fromCharCode(...b.subarray(i, i + 8192));
  }
  return s;
}

/**
 * A raw client on one connection: writes exact bytes and reads into a buffer that the test
 * inspects (`buffered`) and consumes (`take`). The caller closes it (`using`).
 */
export class RawClient implements Disposable {
  readonly conn: Deno.Conn;
  #buf = new Uint8Array(0);
  #isEof = false;
  #isClosed = false;
  #reading: Promise<void> | null = null;

  constructor(conn: Deno.Conn) {
    this.conn = conn;
  }

  static async connect(port: number, hostname = "127.0.0.1"): Promise<RawClient> {
    return new RawClient(await Deno.connect({ port, hostname }));
  }

  static async connectUnix(path: string): Promise<RawClient> {
    return new RawClient(await Deno.connect({ transport: "unix", path }));
  }

  async write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? enc.encode(data) : data;
    let off = 0;
    while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
  }

  /** Whether the peer ended the stream (FIN, or a reset). */
  get isEof(): boolean {
    return this.#isEof;
  }

  /** Bytes received so far and not yet taken. */
  get buffered(): Uint8Array {
    return this.#buf;
  }

  /** One read (at most one in flight); false at EOF; throws after `timeoutMs`. */
  async #readMore(timeoutMs: number): Promise<boolean> {
    if (this.#isEof) return false;
    this.#reading ??= (async () => {
      const chunk = new Uint8Array(65536);
      try {
        const n = await this.conn.read(chunk);
        if (n === null) this.#isEof = true;
        else {
          const next = new Uint8Array(this.#buf.length + n);
          next.set(this.#buf);
          next.set(chunk.subarray(0, n), this.#buf.length);
          this.#buf = next;
        }
      } catch (err) {
        // A reset ends the stream; so does our own close() under a read still in flight.
        if (err instanceof Deno.errors.ConnectionReset || this.#isClosed) this.#isEof = true;
        else throw err;
      } finally {
        this.#reading = null;
      }
    })();
    if (await withDeadline(this.#reading, timeoutMs) === "timeout") {
      throw new Error(`read timed out after ${timeoutMs} ms`);
    }
    return true;
  }

  /** Reads until `pred(buffered)` holds or EOF; throws on timeout. */
  async readUntil(pred: (buf: Uint8Array) => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.#buf)) {
      if (!await this.#readMore(Math.max(1, deadline - Date.now()))) return;
    }
  }

  /** Reads until the peer closes; returns everything received (as latin-1 text). */
  async readToEnd(timeoutMs = 10_000): Promise<string> {
    await this.readUntil(() => false, timeoutMs);
    return this.take(this.#buf.length);
  }

  /** Reads through the first `\n` (or to EOF) and takes that line, newline included, as UTF-8. */
  async readLine(timeoutMs = 10_000): Promise<string> {
    await this.readUntil((b) => b.includes(0x0a), timeoutMs);
    const end = this.#buf.indexOf(0x0a);
    return new TextDecoder().decode(this.takeBytes(end < 0 ? this.#buf.length : end + 1));
  }

  /** Whether the peer closed the connection within `timeoutMs` (drops data read meanwhile). */
  async waitForClose(timeoutMs = 5000): Promise<boolean> {
    try {
      await this.readUntil(() => false, timeoutMs);
      return true;
    } catch {
      return false;
    }
  }

  /** Takes the first `n` buffered bytes. */
  takeBytes(n: number): Uint8Array {
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }

  /** Takes the first `n` buffered bytes as latin-1 text. */
  take(n: number): string {
    return latin1(this.takeBytes(n));
  }

  /** Reads one complete HTTP response (Content-Length, chunked, or close-delimited). */
  async readResponse(timeoutMs = 10_000, opts: { isHead?: boolean } = {}): Promise<HttpResponse> {
    const deadline = Date.now() + timeoutMs;
    await this.readUntil((b) => indexOfCrlfCrlf(b) >= 0, timeoutMs);
    const end = indexOfCrlfCrlf(this.#buf);
    if (end < 0) {
      throw new Error(`connection closed before a response head: "${latin1(this.#buf)}"`);
    }
    const res = parseResponseHead(this.take(end + 4));
    const left = () => Math.max(1, deadline - Date.now());
    if (opts.isHead || res.status === 204 || res.status === 304 || res.status < 200) return res;
    const te = res.headers.get("transfer-encoding");
    const cl = res.headers.get("content-length");
    if (te === "chunked") {
      let body = "";
      for (;;) {
        await this.readUntil((b) => latin1(b).includes("\r\n"), left());
        const line = latin1(this.#buf).split("\r\n")[0];
        const size = parseInt(line, 16);
        if (Number.isNaN(size)) throw new Error(`bad chunk line "${line}"`);
        await this.readUntil((b) => b.length >= line.length + 2 + size + 2, left());
        this.take(line.length + 2);
        body += this.take(size);
        if (this.take(2) !== "\r\n") throw new Error("chunk not followed by CRLF");
        res.chunks.push(size);
        if (size === 0) break;
      }
      res.body = body;
    } else if (cl !== null) {
      const n = Number(cl);
      await this.readUntil((b) => b.length >= n, left());
      if (this.#buf.length < n) throw new Error(`body ended early: ${this.#buf.length}/${n}`);
      res.body = this.take(n);
    } else {
      res.body = await this.readToEnd(left());
    }
    return res;
  }

  close(): void {
    this.#isClosed = true;
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** A response as the raw client saw it. */
export interface HttpResponse {
  status: number;
  reason: string;
  version: string;
  headers: Headers;
  /** Raw head lines in order (to check exact names and duplicates). */
  rawHeaders: [string, string][];
  body: string;
  /** Sizes of the chunks of a chunked body, last one 0. */
  chunks: number[];
}

function parseResponseHead(text: string): HttpResponse {
  const lines = text.split("\r\n");
  const m = /^(HTTP\/\d\.\d) (\d{3}) ?(.*)$/.exec(lines[0]);
  if (!m) throw new Error(`bad status line "${lines[0]}"`);
  const headers = new Headers();
  const rawHeaders: [string, string][] = [];
  for (const l of lines.slice(1)) {
    if (!l) continue;
    const i = l.indexOf(":");
    const name = l.slice(0, i), value = l.slice(i + 1).trim();
    rawHeaders.push([name, value]);
    headers.append(name, value);
  }
  return {
    version: m[1],
    status: Number(m[2]),
    reason: m[3],
    headers,
    rawHeaders,
    body: "",
    chunks: [],
  };
}

function indexOfCrlfCrlf(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}

/** Sends `request` on a fresh connection and reads one response; closes the connection. */
export async function exchange(
  port: number,
  request: string,
): Promise<HttpResponse & { isClosed: boolean }> {
  using c = await RawClient.connect(port);
  await c.write(request);
  const res = await c.readResponse();
  const isClosed = res.headers.get("connection") === "close" ? await c.waitForClose(3000) : false;
  return { ...res, isClosed };
}

/** Connects to `addr`, reads one line (through `\n`, or to EOF), closes. */
export async function readLineFrom(
  addr: Deno.ConnectOptions | Deno.UnixConnectOptions,
): Promise<string> {
  using c = new RawClient(await Deno.connect(addr as Deno.ConnectOptions));
  return await c.readLine();
}

/** How a connection ended, seen from our side. */
export type Ending = "eof" | "reset" | "data" | "open";

/**
 * Reads once from `conn` (up to `timeoutMs`): "eof" (the peer closed: FIN), "reset" (RST),
 * "data" (it answered), or "open" (nothing yet: the read is cancelled by closing `conn`).
 */
export async function endingOf(conn: Deno.Conn, timeoutMs = 3000): Promise<Ending> {
  const read = conn.read(new Uint8Array(4096)).then(
    (n): Ending => n === null ? "eof" : "data",
    (err): Ending => {
      if (err instanceof Deno.errors.ConnectionReset) return "reset";
      if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) {
        return "open"; // cancelled by our own close below
      }
      throw err;
    },
  );
  const ending = await withDeadline(read, timeoutMs);
  if (ending !== "timeout") return ending;
  try {
    conn.close();
  } catch {
    // closed already
  }
  await read;
  return "open";
}
