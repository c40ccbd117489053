/**
 * Test helpers: start the real `apprun` command as a child process, watch its log, and talk
 * to it with raw bytes over real sockets. Nothing here mocks a socket or a process.
 */
export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
export const APPRUN = `${ROOT}/bin/apprun`;
export const DENO = `${ROOT}/node_modules/.bin/deno`;
export const FIXTURES = `${ROOT}/tests/fixtures`;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A running child process whose stderr (and stdout) lines are collected. */
export class Proc {
  readonly child: Deno.ChildProcess;
  readonly pid: number;
  #log = "";
  #waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  readonly status: Promise<Deno.CommandStatus>;
  readonly #pumps: Promise<void>[];

  constructor(child: Deno.ChildProcess) {
    this.child = child;
    this.pid = child.pid;
    this.#pumps = [this.#pump(child.stderr), this.#pump(child.stdout)];
    this.status = child.status;
  }

  get log(): string {
    return this.#log;
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      this.#log += chunk;
      if (Deno.env.get("APPRUN_TEST_VERBOSE")) Deno.stderr.writeSync(enc.encode(chunk));
      for (const w of [...this.#waiters]) {
        const m = this.#log.match(w.re);
        if (m) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    }
  }

  /** Resolves with the first match of `re` in the output (past or future). */
  waitFor(re: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
    const m = this.#log.match(re);
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.resolve !== done);
        reject(new Error(`timed out waiting for ${re} in output:\n${this.#log}`));
      }, timeoutMs);
      const done = (m: RegExpMatchArray) => {
        clearTimeout(timer);
        resolve(m);
      };
      this.#waiters.push({ re, resolve: done });
    });
  }

  kill(signal: Deno.Signal = "SIGTERM"): void {
    try {
      this.child.kill(signal);
    } catch {
      // Already gone.
    }
  }

  /** Waits for exit (killing with SIGKILL after `timeoutMs`) and for the output to drain. */
  async wait(timeoutMs = 20_000): Promise<Deno.CommandStatus> {
    const timer = setTimeout(() => this.kill("SIGKILL"), timeoutMs);
    try {
      const st = await this.status;
      await Promise.all(this.#pumps);
      return st;
    } finally {
      clearTimeout(timer);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.kill("SIGKILL");
    await this.wait();
  }
}

/** Options for {@linkcode spawn}. */
export interface SpawnOptions {
  env?: Record<string, string>;
  cwd?: string;
  clearEnv?: boolean;
}

/** Starts a command with piped output. */
export function spawn(cmd: string, args: string[], opts: SpawnOptions = {}): Proc {
  const child = new Deno.Command(cmd, {
    args,
    env: opts.env,
    cwd: opts.cwd ?? ROOT,
    clearEnv: opts.clearEnv,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return new Proc(child);
}

/** A running `apprun serve` with the port it listens on. */
export interface Served extends AsyncDisposable {
  proc: Proc;
  port: number;
}

/** Starts `apprun serve HANDLER --port 0 ARGS…` and waits until it listens. */
export async function serveFixture(
  handler: string,
  args: string[] = [],
  opts: SpawnOptions = {},
): Promise<Served> {
  const env = { APPRUN_LOG: "debug", ...opts.env };
  const proc = spawn(APPRUN, [
    "serve",
    `${FIXTURES}/${handler}`,
    "--no-supervisor",
    "--port",
    "0",
    "--host",
    "127.0.0.1",
    ...args,
  ], {
    ...opts,
    env,
  });
  const m = await proc.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
  return {
    proc,
    port: Number(m[1]),
    [Symbol.asyncDispose]: () => proc[Symbol.asyncDispose](),
  };
}

/** A raw TCP client that writes exact bytes and reads what comes back. */
export class RawClient {
  readonly conn: Deno.Conn;
  #buf = new Uint8Array(0);
  #isEof = false;
  #reading: Promise<void> | null = null;

  private constructor(conn: Deno.Conn) {
    this.conn = conn;
  }

  static async connect(port: number, hostname = "127.0.0.1"): Promise<RawClient> {
    return new RawClient(await Deno.connect({ port, hostname }));
  }

  async write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? enc.encode(data) : data;
    let off = 0;
    while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
  }

  get isEof(): boolean {
    return this.#isEof;
  }

  /** Bytes received so far and not yet taken. */
  get buffered(): Uint8Array {
    return this.#buf;
  }

  async #readMore(timeoutMs: number): Promise<boolean> {
    if (this.#isEof) return false;
    const chunk = new Uint8Array(65536);
    let timer: ReturnType<typeof setTimeout> | undefined;
    this.#reading ??= (async () => {
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
        if (err instanceof Deno.errors.ConnectionReset) this.#isEof = true;
        else throw err;
      } finally {
        this.#reading = null;
      }
    })();
    const timeout = new Promise<"timeout">((r) =>
      timer = setTimeout(() => r("timeout"), timeoutMs)
    );
    const r = await Promise.race([this.#reading, timeout]);
    clearTimeout(timer);
    if (r === "timeout") throw new Error(`read timed out after ${timeoutMs} ms`);
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

  /** Whether the peer closed the connection within `timeoutMs` (drops data read meanwhile). */
  async waitForClose(timeoutMs = 5000): Promise<boolean> {
    try {
      await this.readUntil(() => false, timeoutMs);
      return true;
    } catch {
      return false;
    }
  }

  take(n: number): string {
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.slice(n);
    return latin1(out);
  }

  /** Reads one complete HTTP response (Content-Length, chunked, or close-delimited). */
  async readResponse(timeoutMs = 10_000, opts: { isHead?: boolean } = {}): Promise<HttpResponse> {
    const deadline = Date.now() + timeoutMs;
    await this.readUntil((b) => indexOfCrlfCrlf(b) >= 0, timeoutMs);
    const end = indexOfCrlfCrlf(this.#buf);
    if (end < 0) {
      throw new Error(`connection closed before a response head: "${latin1(this.#buf)}"`);
    }
    const headText = this.take(end + 4);
    const res = parseResponseHead(headText);
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
        const crlf = this.take(2);
        if (crlf !== "\r\n") throw new Error("chunk not followed by CRLF");
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

export function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) {
    s += String.fromCharCode(...b.subarray(i, i + 8192));
  }
  return s;
}

/** Sends `request` on a fresh connection and reads one response. */
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

/** Whether a process is alive (not a zombie). */
export function isAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export { dec, enc };
