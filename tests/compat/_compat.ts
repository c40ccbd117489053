/**
 * @module
 * Helpers for the proofs that unmodified Deno apps (tests/fixtures/deno_apps/) run under apprun
 * and keep their clients through restarts: one {@linkcode CompatApp} over the two managers —
 * the embedded supervisor (`apprun serve APP --port 0`, SIGHUP) and a real systemd 252 user
 * manager with the units `apprun install` renders (handoff/_util.ts `startApp`), restarted with
 * `systemctl --user restart` — and the clients: keep-alive HTTP load checking
 * every answer, a WebSocket client checking that its numbered messages come back exactly once
 * and in order, an SSE reader checking that event ids run without a gap or a repeat. Nothing is
 * mocked; each helper says who closes what it opens.
 */
import assert from "node:assert/strict";
import { type HttpResponse, RawClient } from "../_net.ts";
import { sleep } from "../_poll.ts";
import { isAvailable } from "../_systemd.ts";
import { type App, type ManagerKind, startApp } from "../handoff/_util.ts";
import { type SseEvent, SseReader } from "../sessions/_sessions.ts";

/** apprun serving an app under a manager that can restart it (handoff/_util.ts). */
export type CompatApp = App;

/** Starts `fixture` (a path under tests/fixtures) under `manager`. */
export function startCompat(manager: ManagerKind, fixture: string): Promise<CompatApp> {
  return startApp(manager, { fixture });
}

const noSystemd = isAvailable();
let isSkipPrinted = false;

/**
 * Registers `scenario` for `fixture` as two tests, `NAME (supervisor)` and `NAME (systemd)`,
 * the latter ignored (with the reason printed once) where a private systemd cannot run.
 */
export function testUnderBoth(
  name: string,
  fixture: string,
  scenario: (app: CompatApp) => Promise<void>,
): void {
  for (const manager of ["supervisor", "systemd"] as const) {
    const isIgnored = manager === "systemd" && noSystemd !== null;
    if (isIgnored && !isSkipPrinted) {
      isSkipPrinted = true;
      console.log(`skip: Deno apps under systemd: ${noSystemd}`);
    }
    Deno.test({
      name: `${name} (${manager})`,
      ignore: isIgnored,
      async fn() {
        await using app = await startCompat(manager, fixture);
        await scenario(app);
      },
    });
  }
}

/** One request the load sends, and what its answer must be. */
export interface Probe {
  method?: string;
  path: string;
  body?: string;
  /** Throws (an assertion) when `res` is not the right answer. */
  check(res: HttpResponse): void;
}

/** What {@linkcode runHttpLoad} saw. */
export interface LoadResult {
  sent: number;
  answered: number;
  failures: string[];
}

/**
 * `clients` keep-alive connections, each sending the probes in turn, one at a time, until
 * `until` resolves; every answer is checked. A connection closed or reset, a timeout or a wrong
 * answer is a failure. Closes its connections.
 */
export async function runHttpLoad(
  port: number,
  probes: Probe[],
  clients: number,
  until: Promise<void>,
): Promise<LoadResult> {
  const result: LoadResult = { sent: 0, answered: 0, failures: [] };
  let isDone = false;
  until.then(() => isDone = true);
  async function client(index: number): Promise<void> {
    using c = await RawClient.connect(port);
    for (let i = index; !isDone; i++) {
      const p = probes[i % probes.length];
      const body = p.body ?? "";
      const length = p.body === undefined ? "" : `Content-Length: ${body.length}\r\n`;
      result.sent++;
      try {
        await c.write(
          `${p.method ?? "GET"} ${p.path} HTTP/1.1\r\nHost: load\r\n${length}\r\n${body}`,
        );
        const res = await c.readResponse(10_000);
        p.check(res);
        result.answered++;
      } catch (err) {
        result.failures.push(`client ${index}, ${p.path}: ${(err as Error).message}`);
        return;
      }
    }
  }
  await Promise.all(Array.from({ length: clients }, (_, i) => client(i)));
  return result;
}

/** Restarts `app` `count` times, `gapMs` apart; returns the pids, the first one included. */
export async function restartTimes(app: CompatApp, count: number, gapMs = 250): Promise<number[]> {
  const pids = [await app.pid()];
  for (let i = 0; i < count; i++) {
    await sleep(gapMs);
    const pid = await app.restart();
    assert.ok(!pids.includes(pid), `restart ${i + 1}: pid ${pid} is new (${pids})`);
    pids.push(pid);
  }
  return pids;
}

/**
 * A WebSocket client (Deno's own) that sends numbered messages, `prefix + n` for n = 1, 2, …,
 * and checks that each comes back — as the app answers it, read by `answerOf` — exactly once
 * and in order. A close or error before {@linkcode close}, or an answer out of order, is a
 * problem. The caller closes it.
 */
export class NumberedWs {
  readonly client: Client;
  sent = 0;
  answered = 0;
  readonly #prefix: string;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(url: string, prefix: string, answerOf: (text: string) => number | null) {
    this.#prefix = prefix;
    this.client = new Client(url, (text) => {
      const n = answerOf(text);
      if (n === null) return;
      if (n !== this.answered + 1) this.client.problems.push(`answer ${n} after ${this.answered}`);
      this.answered = Math.max(this.answered, n);
    });
    this.client.closed.then(() => clearInterval(this.#timer));
  }

  send(): void {
    if (this.client.ws.readyState !== WebSocket.OPEN) return;
    this.sent++;
    this.client.ws.send(`${this.#prefix}${this.sent}`);
  }

  /** Sends one numbered message every `everyMs`. */
  startSending(everyMs: number): void {
    this.#timer = setInterval(() => this.send(), everyMs);
  }

  /** Stops sending and waits (up to `timeoutMs`) until every message sent is answered. */
  async settle(timeoutMs = 10_000): Promise<void> {
    clearInterval(this.#timer);
    const deadline = Date.now() + timeoutMs;
    while (this.answered < this.sent && Date.now() < deadline) await sleep(20);
  }

  close(): Promise<void> {
    clearInterval(this.#timer);
    return this.client.close();
  }
}

/**
 * Reads `GET path` as an event stream and checks that ids run 1, 2, 3, … without a gap or a
 * repeat, and that each event's data is as `isWhole` expects. The caller stops it with
 * {@linkcode stop}, which cancels the body.
 */
export class SseCounter {
  readonly problems: string[] = [];
  last = 0;
  readonly #reader: Promise<SseReader>;
  readonly #running: Promise<void>;
  #isStopping = false;

  readonly #isWhole: (ev: SseEvent) => boolean;

  constructor(port: number, path: string, isWhole: (ev: SseEvent) => boolean = () => true) {
    this.#isWhole = isWhole;
    this.#reader = fetch(`http://127.0.0.1:${port}${path}`).then((res) => {
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
      return new SseReader(res.body!);
    });
    this.#running = this.#read();
  }

  async #read(): Promise<void> {
    const reader = await this.#reader;
    while (!this.#isStopping) {
      let ev;
      try {
        ev = await reader.next(3000);
      } catch (err) {
        if (!this.#isStopping) {
          this.problems.push(`after id ${this.last}: ${(err as Error).message}`);
        }
        return;
      }
      const id = Number(ev.id);
      if (id !== this.last + 1) this.problems.push(`id ${ev.id} after ${this.last}`);
      if (!this.#isWhole(ev)) this.problems.push(`event ${ev.id}: data ${JSON.stringify(ev.data)}`);
      this.last = id;
    }
  }

  /** Resolves once ids past `id` have arrived (or the stream failed). */
  async reach(id: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.last < id && this.problems.length === 0 && Date.now() < deadline) await sleep(20);
  }

  async stop(): Promise<void> {
    this.#isStopping = true;
    await (await this.#reader).cancel();
    await this.#running;
  }
}

/**
 * A Deno WebSocket client that keeps every message (and hands each to `onMessage`); a close or
 * error event before {@linkcode close} is recorded in `problems`. Closed by `close()`.
 */
export class Client {
  readonly ws: WebSocket;
  readonly messages: string[] = [];
  readonly problems: string[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<CloseEvent>;
  #isClosing = false;

  constructor(url: string, onMessage?: (text: string) => void) {
    this.ws = new WebSocket(url);
    const opened = Promise.withResolvers<void>();
    const closed = Promise.withResolvers<CloseEvent>();
    this.opened = opened.promise;
    this.closed = closed.promise;
    this.ws.onopen = () => opened.resolve();
    this.ws.onmessage = (e) => {
      this.messages.push(String(e.data));
      onMessage?.(String(e.data));
    };
    this.ws.onclose = (e) => {
      if (!this.#isClosing) this.problems.push(`closed ${e.code} ${e.reason}`);
      closed.resolve(e);
    };
    this.ws.onerror = () => {
      if (!this.#isClosing) this.problems.push("error event");
      opened.reject(new Error(`${url}: error`));
    };
  }

  /** Sends `text` and waits for the echo of it. */
  async ask(text: string, timeoutMs = 10_000): Promise<string> {
    const start = this.messages.length;
    this.ws.send(text);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const answer = this.messages.slice(start).find((m) => m.endsWith(` ${text}`));
      if (answer !== undefined) return answer;
      if (Date.now() > deadline) throw new Error(`no answer to ${text}: ${this.messages}`);
      await sleep(10);
    }
  }

  async close(): Promise<void> {
    this.#isClosing = true;
    if (this.ws.readyState < WebSocket.CLOSING) this.ws.close();
    await this.closed;
  }
}
