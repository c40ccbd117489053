/**
 * @module
 * Helpers for the session proofs: `superviseFixture()` runs the real `apprun serve` under its
 * embedded supervisor and restarts it as `systemctl restart` would (cold, through the
 * fdstore: the control socket's `restart`) or reloads it (warm: SIGHUP); `RawWs` is a
 * WebSocket client over a raw TCP socket that writes exact (masked) frame bytes and reads the
 * server's frames back; `SseReader` parses an event stream from `fetch`. Nothing is mocked.
 * Each helper says who closes what it opens.
 */
import assert from "node:assert/strict";
import { APPRUN, FIXTURES, type Proc, ROOT, spawn } from "../_proc.ts";
import { type HttpResponse, RawClient } from "../_net.ts";
import { sleep, withDeadline } from "../_poll.ts";
import { supervisorRequest } from "../../runtime/supervisor/mod.ts";

export { clientFrame, concatBytes } from "../ws/_frames.ts";

/** Where tests leave artifacts (screenshots); CI keeps the folder. */
export const OUT_DIR = `${ROOT}/.test-out/sessions`;

/** A fixture under tests/fixtures, by file name. */
export const fixture = (name: string): string => `${FIXTURES}/${name}`;

/** The supervisor's start limit (runtime/supervisor/options.ts), with a margin. */
const START_LIMIT_BURST = 5;
const START_LIMIT_MS = 10_250;

/** What one restart or reload did, as the supervisor reported it. */
export interface Restart {
  generation: number;
  pid: number;
  /** Cold: SIGTERM to the old worker → READY=1 from the new one; warm: the whole reload. ms. */
  handoffMs: number;
}

/** `apprun serve` under its embedded supervisor. Dispose it to stop everything. */
export interface Supervised extends AsyncDisposable {
  proc: Proc;
  port: number;
  /** The current worker's pid. */
  pid: number;
  generation: number;
  /**
   * The control socket's `restart` (cold); resolves when the next generation is ready. Waits
   * first when needed to stay within the supervisor's start limit (5 starts in 10 s,
   * systemd's default StartLimitBurst=/StartLimitIntervalSec=, which counts restarts too).
   */
  restart(): Promise<Restart>;
  /** SIGHUP (warm); resolves when the next worker is the main process. */
  reload(): Promise<Restart>;
}

/**
 * Starts `apprun serve HANDLER --port 0` with its supervisor (no NOTIFY_SOCKET, no LISTEN_FDS
 * in its environment) and a private control socket; waits for generation 1. The caller owns
 * the result: `await using` stops the supervisor (SIGTERM, then SIGKILL) and removes the temp
 * dir.
 */
export async function superviseFixture(
  handler: string,
  opts: { args?: string[]; env?: Record<string, string> } = {},
): Promise<Supervised> {
  const dir = await Deno.makeTempDir({ prefix: "apprun-sessions-" });
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (!/^(NOTIFY_SOCKET|LISTEN_|WATCHDOG_)/.test(k)) env[k] = v;
  }
  const proc = spawn(APPRUN, [
    "serve",
    handler,
    "--port",
    "0",
    "--host",
    "127.0.0.1",
    "--control",
    `${dir}/control.sock`,
    ...(opts.args ?? []),
  ], { env: { ...env, APPRUN_LOG: "info", ...opts.env }, clearEnv: true });
  try {
    const listening = await proc.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
    const ready = await proc.waitFor(/generation 1 ready: pid (\d+)/);
    const starts = [performance.now()];
    const s: Supervised = {
      proc,
      port: Number(listening[1]),
      pid: Number(ready[1]),
      generation: 1,
      async restart(): Promise<Restart> {
        const generation = s.generation + 1;
        if (starts.length >= START_LIMIT_BURST) {
          const wait = starts[starts.length - START_LIMIT_BURST] + START_LIMIT_MS -
            performance.now();
          if (wait > 0) await sleep(wait);
        }
        starts.push(performance.now());
        const reply = await supervisorRequest(`${dir}/control.sock`, { cmd: "restart" });
        assert.ok(reply.ok, JSON.stringify(reply));
        const m = await proc.waitFor(
          new RegExp(`generation ${generation} ready: pid (\\d+), handoff took (\\d+) ms`),
        );
        s.generation = generation;
        s.pid = Number(m[1]);
        return { generation, pid: s.pid, handoffMs: Number(m[2]) };
      },
      async reload(): Promise<Restart> {
        const generation = s.generation + 1;
        proc.kill("SIGHUP");
        const m = await proc.waitFor(
          new RegExp(`generation ${generation} ready: pid (\\d+), took over .* in (\\d+) ms`),
        );
        s.generation = generation;
        s.pid = Number(m[1]);
        return { generation, pid: s.pid, handoffMs: Number(m[2]) };
      },
      async [Symbol.asyncDispose]() {
        proc.kill("SIGTERM");
        await proc.wait(10_000);
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      },
    };
    return s;
  } catch (err) {
    await proc[Symbol.asyncDispose]();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  }
}

/** One frame from the server. */
export interface ServerFrame {
  fin: boolean;
  opcode: number;
  payload: Uint8Array;
}

/** A close frame's code and reason. */
export function closeOf(frame: ServerFrame): { code: number; reason: string } {
  assert.equal(frame.opcode, 0x8, `expected a close frame, got opcode ${frame.opcode}`);
  const p = frame.payload;
  if (p.length < 2) return { code: 1005, reason: "" };
  return { code: (p[0] << 8) | p[1], reason: new TextDecoder().decode(p.subarray(2)) };
}

const SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ==";

/** The request head of an opening handshake; `headers` replace or (with null) drop defaults. */
export function upgradeRequest(
  path: string,
  headers: Record<string, string | null> = {},
): string {
  const all: Record<string, string | null> = {
    Host: "sessions.test",
    Upgrade: "websocket",
    Connection: "Upgrade",
    "Sec-WebSocket-Key": SAMPLE_KEY,
    "Sec-WebSocket-Version": "13",
    ...headers,
  };
  const lines = Object.entries(all).filter(([, v]) => v !== null).map(([k, v]) => `${k}: ${v}`);
  return `GET ${path} HTTP/1.1\r\n${lines.join("\r\n")}\r\n\r\n`;
}

/**
 * A WebSocket client on a raw TCP connection: the test writes exact frame bytes (see
 * `clientFrame`) and reads the server's frames. The caller closes it (`using`).
 */
export class RawWs implements Disposable {
  readonly raw: RawClient;
  /** The 101 response, as received. */
  readonly response: HttpResponse;

  private constructor(raw: RawClient, response: HttpResponse) {
    this.raw = raw;
    this.response = response;
  }

  /**
   * Connects and completes the opening handshake for `path` (`headers` as in
   * `upgradeRequest`); throws unless the answer is 101.
   */
  static async open(
    port: number,
    path: string,
    headers: Record<string, string | null> = {},
  ): Promise<RawWs> {
    const raw = await RawClient.connect(port);
    try {
      await raw.write(upgradeRequest(path, headers));
      const res = await raw.readResponse();
      assert.equal(res.status, 101, `handshake answered ${res.status}: ${res.body}`);
      return new RawWs(raw, res);
    } catch (err) {
      raw.close();
      throw err;
    }
  }

  write(bytes: Uint8Array): Promise<void> {
    return this.raw.write(bytes);
  }

  /** Reads one whole frame; throws on timeout or when the server closed TCP first. */
  async read(timeoutMs = 10_000): Promise<ServerFrame> {
    await this.raw.readUntil((b) => frameLength(b) !== null, timeoutMs);
    const n = frameLength(this.raw.buffered);
    if (n === null) throw new Error("connection closed before a whole frame");
    const bytes = Uint8Array.from(this.raw.take(n), (c) => c.charCodeAt(0));
    const len7 = bytes[1] & 0x7f;
    const start = len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
    return { fin: (bytes[0] & 0x80) !== 0, opcode: bytes[0] & 0x0f, payload: bytes.slice(start) };
  }

  /** Reads one text frame and returns its text. */
  async readText(timeoutMs = 10_000): Promise<string> {
    const f = await this.read(timeoutMs);
    assert.equal(f.opcode, 0x1, `expected text, got opcode ${f.opcode}`);
    return new TextDecoder().decode(f.payload);
  }

  /** Whether the server closed TCP (EOF) within `timeoutMs`, with nothing more unread. */
  async isClosedByServer(timeoutMs = 5000): Promise<boolean> {
    try {
      await this.raw.readUntil(() => false, timeoutMs);
    } catch {
      return false;
    }
    return this.raw.isEof && this.raw.buffered.length === 0;
  }

  close(): void {
    this.raw.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** The length of the first whole (unmasked, server) frame in `b`, or null when incomplete. */
function frameLength(b: Uint8Array): number | null {
  if (b.length < 2) return null;
  const len7 = b[1] & 0x7f;
  const masked = (b[1] & 0x80) !== 0 ? 4 : 0;
  let header = 2;
  let len = len7;
  if (len7 === 126) {
    if (b.length < 4) return null;
    len = (b[2] << 8) | b[3];
    header = 4;
  } else if (len7 === 127) {
    if (b.length < 10) return null;
    len = Number(new DataView(b.buffer, b.byteOffset + 2, 8).getBigUint64(0));
    header = 10;
  }
  const total = header + masked + len;
  return b.length >= total ? total : null;
}

/** One server-sent event. */
export interface SseEvent {
  id: string;
  data: string;
}

/** Parses `text/event-stream` from a `fetch` body (WHATWG HTML §9.2.6, the parts used here). */
export class SseReader {
  readonly #reader: ReadableStreamDefaultReader<string>;
  #buf = "";
  #queue: SseEvent[] = [];

  constructor(body: ReadableStream<Uint8Array>) {
    this.#reader = body.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** The next event; throws when the stream ends or nothing comes within `timeoutMs`. */
  async next(timeoutMs = 10_000): Promise<SseEvent> {
    const deadline = Date.now() + timeoutMs;
    while (this.#queue.length === 0) {
      const r = await withDeadline(this.#reader.read(), Math.max(1, deadline - Date.now()));
      if (r === "timeout") throw new Error(`no SSE event within ${timeoutMs} ms`);
      if (r.done) throw new Error("SSE stream ended");
      this.#buf += r.value;
      this.#parse();
    }
    return this.#queue.shift()!;
  }

  #parse(): void {
    let end: number;
    while ((end = this.#buf.indexOf("\n\n")) >= 0) {
      const block = this.#buf.slice(0, end);
      this.#buf = this.#buf.slice(end + 2);
      const ev: SseEvent = { id: "", data: "" };
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("id: ")) ev.id = line.slice(4);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length === 0) continue; // a comment or retry-only block
      ev.data = data.join("\n");
      this.#queue.push(ev);
    }
  }

  /** Cancels the body (closes the connection). */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}
