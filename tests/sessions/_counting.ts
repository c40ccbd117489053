/**
 * @module
 * A numbered-message session on Deno's own `WebSocket` client (an implementation independent
 * of apprun's): sends `c 1`, `c 2`, … on a timer and checks that every answer `a <n>` and every
 * server push `s <seq>` arrives exactly once and in order, against the fixture
 * `sessions_counter.ts`. Records round-trip times, the pids that answered, and any close or
 * error event. `close()` ends the socket; the test awaits it so no resource outlives the test.
 */

/** What the server reports for a session (`state` → `state <json>`). */
export interface ServerState {
  id: string;
  recv: number;
  sent: number;
  errors: string[];
  pids: number[];
}

/** One client session. */
export class CountingSession {
  readonly id: string;
  readonly ws: WebSocket;
  /** Last number sent, acknowledged, and last push received. */
  sent = 0;
  acked = 0;
  pushes = 0;
  /** Protocol violations seen by this client (lost, duplicated, reordered, unexpected). */
  readonly problems: string[] = [];
  /** Close and error events: any during the run is a failure. */
  readonly events: string[] = [];
  /** Round-trip times of `c n` → `a n`, ms. */
  readonly rtts: number[] = [];
  /** Pids that answered, in order of first appearance. */
  readonly pids: number[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<CloseEvent>;
  #sentAt = new Map<number, number>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #stateWaiter: ((s: ServerState) => void) | null = null;
  #isClosing = false;

  constructor(url: string, id: string) {
    this.id = id;
    this.ws = new WebSocket(url);
    const opened = Promise.withResolvers<void>();
    const closed = Promise.withResolvers<CloseEvent>();
    this.opened = opened.promise;
    this.closed = closed.promise;
    this.ws.onopen = () => opened.resolve();
    this.ws.onerror = (ev) => {
      this.events.push(`error: ${(ev as ErrorEvent).message ?? "?"}`);
      opened.reject(new Error(`${id}: error before open`));
    };
    this.ws.onclose = (ev) => {
      if (!this.#isClosing) this.events.push(`close ${ev.code} ${ev.reason}`);
      clearInterval(this.#timer);
      closed.resolve(ev);
    };
    this.ws.onmessage = (ev) => this.#onMessage(String(ev.data));
  }

  /** Starts sending one numbered message every `everyMs`. */
  startSending(everyMs: number): void {
    this.#timer = setInterval(() => this.sendNext(), everyMs);
  }

  stopSending(): void {
    clearInterval(this.#timer);
  }

  sendNext(): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.sent++;
    this.#sentAt.set(this.sent, performance.now());
    this.ws.send(`c ${this.sent}`);
  }

  /** Whether every message sent so far has been answered. */
  get isSettled(): boolean {
    return this.acked === this.sent;
  }

  /** Asks the server for this session's state. */
  state(timeoutMs = 5000): Promise<ServerState> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.id}: no state reply`)), timeoutMs);
      this.#stateWaiter = (s) => {
        clearTimeout(timer);
        resolve(s);
      };
      this.ws.send("state");
    });
  }

  /** Closes normally and waits for the close event. */
  async close(): Promise<CloseEvent> {
    this.stopSending();
    this.#isClosing = true;
    if (this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000, "done");
    return await this.closed;
  }

  #onMessage(text: string): void {
    const [kind, a, b] = text.split(" ");
    const n = Number(a);
    if (kind === "a") {
      if (n !== this.acked + 1) this.problems.push(`a ${n} after a ${this.acked}`);
      this.acked = n;
      const t0 = this.#sentAt.get(n);
      if (t0 !== undefined) this.rtts.push(performance.now() - t0);
      this.#sentAt.delete(n);
      this.#sawPid(Number(b));
    } else if (kind === "s") {
      if (n !== this.pushes + 1) this.problems.push(`s ${n} after s ${this.pushes}`);
      this.pushes = n;
      this.#sawPid(Number(b));
    } else if (kind === "state") {
      const waiter = this.#stateWaiter;
      this.#stateWaiter = null;
      waiter?.(JSON.parse(text.slice(6)));
    } else {
      this.problems.push(`unexpected message ${text.slice(0, 60)}`);
    }
  }

  #sawPid(pid: number): void {
    if (this.pids.at(-1) !== pid) this.pids.push(pid);
  }
}
