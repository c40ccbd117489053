/**
 * Helpers for the upgrade tests: a private HOME (so `install --user` writes below it), an
 * installed fixture served by apprun's supervisor, running `apprun upgrade|rollback|status`
 * as real processes, and live clients — keep-alive load (scripts/e2e/load.ts) and counting
 * WebSockets on Deno's own client — whose every failure is counted.
 */
import assert from "node:assert/strict";
import { APPRUN, type CommandResult, FIXTURES, type Proc, ROOT, run, spawn } from "../_proc.ts";
import { freePort } from "../_net.ts";
import { waitUntil } from "../_poll.ts";
import { assertNothingLost } from "../_load.ts";
import { type LoadReport, runLoad } from "../../scripts/e2e/load.ts";

export const UPGRADE_FIXTURES = `${FIXTURES}/upgrade`;

/** The Deno cache of the tests' user: a private HOME must not mean a cold cache. */
const DENO_DIR = Deno.env.get("DENO_DIR") ??
  `${Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME")}/.cache`}/deno`;

/** apprun compile's cache of the gzip'd Deno (5 s of gzip), shared by the tests' HOMEs. */
export const BUILD_CACHE = `${ROOT}/.test-out/build-cache`;

/**
 * A private HOME under .test-out (not /tmp: units with PrivateTmp= would not see it), with
 * `XDG_RUNTIME_DIR` inside it — no user manager answers there unless `extra` says otherwise.
 * Artifacts started there unpack into it (~/.cache/apprun).
 */
export async function privateHome(
  extra: Record<string, string> = {},
): Promise<{ home: string; env: Record<string, string> } & AsyncDisposable> {
  await Deno.mkdir(`${ROOT}/.test-out`, { recursive: true });
  const home = await Deno.makeTempDir({ dir: `${ROOT}/.test-out`, prefix: "home-" });
  await Deno.mkdir(`${home}/run`, { mode: 0o700 });
  const env = {
    HOME: home,
    XDG_RUNTIME_DIR: `${home}/run`,
    DENO_DIR,
    APPRUN_CACHE_DIR: BUILD_CACHE,
    ...extra,
  };
  return {
    home,
    env,
    [Symbol.asyncDispose]: () => Deno.remove(home, { recursive: true }).catch(() => {}),
  };
}

/** Runs `apprun args…` to completion with `env` added. */
export function apprun(args: string[], env: Record<string, string>): Promise<CommandResult> {
  return run(APPRUN, args, { env });
}

/** The JSON report an `--json` run printed last. */
export function jsonReport(r: CommandResult): Record<string, unknown> {
  const line = r.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`no JSON report (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
}

/** An installed fixture served by apprun's supervisor (started by hand, as on a laptop). */
export interface Served extends AsyncDisposable {
  name: string;
  port: number;
  bin: string;
  env: Record<string, string>;
  supervisor: Proc;
}

/** `apprun install FIXTURE --name NAME --port PORT --user EXTRA…` into `env`'s HOME. */
export function installUser(
  fixture: string,
  { name, port, env, extra = [] }: {
    name: string;
    port: number;
    env: Record<string, string>;
    extra?: string[];
  },
): Promise<CommandResult> {
  const args = [`${UPGRADE_FIXTURES}/${fixture}`, "--name", name, "--port", String(port)];
  return apprun(["install", ...args, "--user", ...extra], env);
}

/** `apprun install FIXTURE --user` into `env`'s HOME, then `BIN serve --port N`. */
export async function installAndServe(
  fixture: string,
  name: string,
  env: Record<string, string>,
): Promise<Served> {
  const port = freePort();
  const inst = await installUser(fixture, { name, port, env });
  assert.equal(inst.code, 0, inst.stderr);
  const bin = `${env.HOME}/.local/lib/apprun/${name}/${name}`;
  const supervisor = spawn(bin, ["serve", "--port", String(port), "--host", "127.0.0.1"], {
    env: { ...env, APPRUN_LOG: "info" },
  });
  await supervisor.waitFor(/generation 1 ready/);
  return {
    name,
    port,
    bin,
    env,
    supervisor,
    async [Symbol.asyncDispose]() {
      supervisor.kill("SIGTERM");
      await supervisor.wait();
    },
  };
}

/** What installed binary `bin` says to `version`. */
export async function versionLine(bin: string): Promise<string> {
  const out = await new Deno.Command(bin, { args: ["version"], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

/** GET /version. */
export async function versionOf(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/version`);
  return await res.text();
}

/** A WebSocket that sends "n:<k>" and checks each answer "<k> <count> <version> <pid>". */
export class CountingSocket {
  readonly ws: WebSocket;
  sent = 0;
  answered = 0;
  readonly problems: string[] = [];
  readonly events: string[] = [];
  readonly versions: string[] = [];
  readonly pids: number[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<void>;
  #timer: ReturnType<typeof setInterval> | undefined;
  #isClosing = false;

  constructor(port: number) {
    this.ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const opened = Promise.withResolvers<void>();
    const closed = Promise.withResolvers<void>();
    this.opened = opened.promise;
    this.closed = closed.promise;
    this.ws.onopen = () => opened.resolve();
    this.ws.onerror = () => {
      this.events.push("error");
      opened.reject(new Error("WebSocket error before open"));
    };
    this.ws.onclose = (ev) => {
      if (!this.#isClosing) this.events.push(`close ${ev.code} ${ev.reason}`);
      clearInterval(this.#timer);
      closed.resolve();
    };
    this.ws.onmessage = (ev) => {
      const [k, count, version, pid] = String(ev.data).split(" ");
      this.answered++;
      if (Number(k) !== this.answered) this.problems.push(`answer ${k} after ${this.answered - 1}`);
      if (Number(count) !== this.answered) {
        this.problems.push(`count ${count} for message ${this.answered}: state not carried`);
      }
      if (this.versions[this.versions.length - 1] !== version) this.versions.push(version);
      if (this.pids[this.pids.length - 1] !== Number(pid)) this.pids.push(Number(pid));
    };
  }

  /** Sends one numbered message every `everyMs`. */
  start(everyMs = 25): void {
    this.#timer = setInterval(() => {
      if (this.ws.readyState !== WebSocket.OPEN) return;
      this.sent++;
      this.ws.send(`n:${this.sent}`);
    }, everyMs);
  }

  /**
   * Stops sending and waits until every message was answered — or the socket was closed (a close
   * is recorded in `events`, and whoever reads them judges it).
   */
  async settle(timeoutMs = 10_000): Promise<void> {
    clearInterval(this.#timer);
    await waitUntil(
      () => this.answered >= this.sent || this.ws.readyState === WebSocket.CLOSED,
      () => `every WebSocket message answered (${this.answered} of ${this.sent})`,
      { timeoutMs },
    );
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#isClosing = true;
    if (this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000, "done");
    await this.closed;
  }
}

/** Live clients: `connections` keep-alive HTTP clients and `sockets` WebSockets. */
export class LiveClients {
  readonly sockets: CountingSocket[];
  readonly #stop = Promise.withResolvers<void>();
  readonly #load: Promise<LoadReport>;

  private constructor(sockets: CountingSocket[], load: Promise<LoadReport>) {
    this.sockets = sockets;
    this.#load = load;
  }

  static async start(port: number, connections = 50, sockets = 5): Promise<LiveClients> {
    const ws = Array.from({ length: sockets }, () => new CountingSocket(port));
    await Promise.all(ws.map((s) => s.opened));
    for (const s of ws) s.start();
    const stop = Promise.withResolvers<void>();
    const load = runLoad({ port, connections, until: stop.promise, thinkMs: 2 });
    const clients = new LiveClients(ws, load);
    clients.#stop.promise.then(stop.resolve);
    await waitUntil(() => ws.every((s) => s.answered > 0), "an answer on every WebSocket");
    return clients;
  }

  /** Stops everything; returns what the clients saw. */
  async stop(): Promise<{ report: LoadReport; sockets: CountingSocket[] }> {
    await Promise.all(this.sockets.map((s) => s.settle()));
    this.#stop.resolve();
    const report = await this.#load;
    for (const s of this.sockets) await s.close();
    return { report, sockets: this.sockets };
  }

  /** Stops everything and asserts nothing failed: no error, reset, close, lost or wrong answer. */
  async stopAndCheck(label: string): Promise<{ report: LoadReport; sockets: CountingSocket[] }> {
    const { report } = await this.stop();
    console.log(
      `  ${label}: ${report.answered}/${report.requests} keep-alive requests answered over ` +
        `${report.pidsPerConnection.length} connections; ${this.sockets.length} WebSockets, ` +
        `${this.sockets.reduce((n, s) => n + s.answered, 0)} messages, versions seen ` +
        `${this.sockets[0]?.versions.join(" → ")}`,
    );
    assertNothingLost(report, `${label}: keep-alive`, 1);
    assert.ok(this.sockets.length > 0, `${label}: no WebSocket to check`);
    for (const s of this.sockets) {
      assert.deepEqual(s.events, [], `${label}: WebSocket closed or failed`);
      assert.deepEqual(s.problems.slice(0, 5), [], `${label}: WebSocket answers`);
      assert.equal(s.answered, s.sent, `${label}: every WebSocket message answered`);
    }
    return { report, sockets: this.sockets };
  }
}

/** Prints an upgrade's measured figures. */
export function printFigures(label: string, report: Record<string, unknown>): void {
  const t = report.timings as Record<string, number>;
  const f = (ms: number | undefined) => ms === undefined ? "-" : `${ms.toFixed(1)} ms`;
  console.log(
    `  ${label}: ${report.result}; check ${f(t.checkMs)}, swap ${f(t.swapMs)}, restart ` +
      `${f(t.restartMs)}, health ${f(t.healthMs)}, rollback ${f(t.rollbackMs)}, total ${
        f(t.totalMs)
      }`,
  );
}
