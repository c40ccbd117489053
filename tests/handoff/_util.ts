/**
 * @module
 * Helpers for the handoff proofs: one {@linkcode App} shape over the two managers that restart
 * apprun the same way — the embedded supervisor (`apprun serve`, SIGHUP) and a real systemd 252
 * user manager (`systemctl --user restart`, units as `tests/handoff/systemd_restart_test.ts`
 * writes them) — so each scenario runs unchanged under both; raw-client helpers; and a /proc
 * view of which client connections a worker holds. Disposing an App ends every process,
 * manager and temp dir it started; nothing is mocked.
 */
import assert from "node:assert/strict";
import {
  APPRUN,
  FIXTURES,
  type HttpResponse,
  type Proc,
  RawClient,
  sleep,
  spawn,
} from "../_helpers.ts";
import { isAvailable, startUserManager, type UserManager } from "../_systemd.ts";
import { supervisorRequest } from "../../runtime/supervisor/mod.ts";

/** The old process's test faults (`APPRUN_TEST_HANDOFF_FAULT`, runtime/handoff/hand_off.ts). */
export type Fault =
  | "corrupt-state"
  | "future-version"
  | "empty-bundle"
  | "missing-bundle"
  | "kill-before-store"
  | "kill-after-store";

/** Which manager runs apprun. */
export type ManagerKind = "supervisor" | "systemd";

/** Options for {@linkcode startApp}. */
export interface AppOptions {
  /** A file in tests/fixtures (default `handoff.ts`: answers `<id> <pid>`). */
  fixture?: string;
  /** Set in every worker's environment (only the old process acts on it). */
  fault?: Fault;
}

/** apprun serving a fixture under a manager that can restart it. */
export interface App extends AsyncDisposable {
  readonly manager: ManagerKind;
  readonly port: number;
  /** The current worker's pid. */
  pid(): Promise<number>;
  /** Restarts the worker; resolves with the new worker's pid once it sent READY=1. */
  restart(): Promise<number>;
  /** How many fds the manager's fdstore holds. */
  storedCount(): Promise<number>;
  /** Everything apprun logged so far (every worker; the supervisor's own lines too). */
  log(): Promise<string>;
}

/** Starts apprun on `manager` (the caller checks `isAvailable()` for systemd). */
export function startApp(manager: ManagerKind, opts: AppOptions = {}): Promise<App> {
  return manager === "supervisor" ? startSupervised(opts) : startSystemd(opts);
}

const READY_RE = /generation (\d+) ready: pid (\d+)/g;

/** `apprun serve FIXTURE --port 0` by hand: the embedded supervisor and its worker. */
export async function startSupervised(opts: AppOptions = {}): Promise<App & { proc: Proc }> {
  const dir = await Deno.makeTempDir({ prefix: "apprun-handoff-" });
  const control = `${dir}/control.sock`;
  const env: Record<string, string> = { APPRUN_LOG: "info" };
  if (opts.fault) env.APPRUN_TEST_HANDOFF_FAULT = opts.fault;
  const proc = spawn(APPRUN, [
    "serve",
    `${FIXTURES}/${opts.fixture ?? "handoff.ts"}`,
    "--port",
    "0",
    "--host",
    "127.0.0.1",
    "--idle-timeout",
    "120s",
    "--control",
    control,
  ], { env });
  let isExited = false;
  proc.status.then(() => isExited = true);
  const readyLines = () => [...proc.log.matchAll(READY_RE)];
  // Polls the output; fails at once (with it) when the supervisor exits first.
  const waitReady = async (count: number): Promise<number> => {
    const deadline = Date.now() + 15_000;
    while (readyLines().length < count) {
      if (isExited || Date.now() > deadline) {
        throw new Error(`no READY=1 number ${count}; supervisor output:\n${proc.log}`);
      }
      await sleep(5);
    }
    return Number(readyLines()[count - 1][2]);
  };
  try {
    await waitReady(1);
    const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(proc.log)![1]);
    return {
      manager: "supervisor",
      port,
      proc,
      pid: () => Promise.resolve(Number(readyLines().at(-1)![2])),
      async restart() {
        const count = readyLines().length;
        proc.kill("SIGHUP");
        return await waitReady(count + 1);
      },
      async storedCount() {
        const reply = await supervisorRequest(control, { cmd: "status" });
        assert.ok(reply.ok && "storedFds" in reply, JSON.stringify(reply));
        return reply.storedFds.reduce((n, s) => n + s.count, 0);
      },
      log: () => Promise.resolve(proc.log),
      async [Symbol.asyncDispose]() {
        proc.kill("SIGTERM");
        await proc.wait();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      },
    };
  } catch (err) {
    await proc[Symbol.asyncDispose]();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  }
}

function freePort(): number {
  const l = Deno.listen({ port: 0, hostname: "127.0.0.1" });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Writes and starts app.socket + app.service serving `handler`; `extra` is appended to [Service]. */
export async function installApp(m: UserManager, handler: string, extra = ""): Promise<number> {
  const port = freePort();
  await m.writeUnit(
    "app.socket",
    `[Socket]\nListenStream=127.0.0.1:${port}\nFileDescriptorName=web\nBacklog=4096\n`,
  );
  await m.writeUnit(
    "app.service",
    `[Unit]\nStartLimitIntervalSec=60\nStartLimitBurst=100\n[Service]\nType=notify\nNotifyAccess=main\n` +
      `ExecStart=${APPRUN} serve ${FIXTURES}/${handler} --idle-timeout 120s\n` +
      `FileDescriptorStoreMax=16\nLimitNOFILE=20000\nTimeoutStopSec=30\n${extra}`,
  );
  await m.daemonReload();
  const r = await m.systemctl("start", "app.socket");
  assert.equal(r.code, 0, r.stderr);
  return port;
}

/** apprun as app.service (socket-activated) under a private systemd 252 user manager. */
export async function startSystemd(opts: AppOptions = {}): Promise<App & { m: UserManager }> {
  const m = await startUserManager();
  try {
    const logFile = `${m.dir}/app.log`;
    let extra = `StandardOutput=append:${logFile}\nStandardError=append:${logFile}\n` +
      `Environment=APPRUN_LOG=info\n`;
    if (opts.fault) extra += `Environment=APPRUN_TEST_HANDOFF_FAULT=${opts.fault}\n`;
    const port = await installApp(m, opts.fixture ?? "handoff.ts", extra);
    const start = await m.systemctl("start", "app.service");
    assert.equal(start.code, 0, start.stderr);
    const pid = async () => Number(await m.show("app.service", "MainPID"));
    return {
      manager: "systemd",
      port,
      m,
      pid,
      async restart() {
        const r = await m.systemctl("restart", "app.service");
        assert.equal(r.code, 0, `systemctl restart: ${r.stderr}\n${await m.log()}`);
        return await pid();
      },
      storedCount: async () => Number(await m.show("app.service", "NFileDescriptorStore")),
      log: () => Deno.readTextFile(logFile).catch(() => ""),
      [Symbol.asyncDispose]: () => m.stop(),
    };
  } catch (err) {
    await m.stop();
    throw err;
  }
}

/** A GET request for `path`. */
export const GET = (path: string) => `GET ${path} HTTP/1.1\r\nHost: t\r\n\r\n`;

/** The fixture's answer, `<id> <pid>` (or `<bytes> <pid>` for /upload). */
export interface Answer {
  status: number;
  id: string;
  pid: number;
  res: HttpResponse;
}

/** Reads one response and splits the fixture's body. */
export async function readAnswer(c: RawClient, timeoutMs = 10_000): Promise<Answer> {
  const res = await c.readResponse(timeoutMs);
  const [id, pid] = res.body.trim().split(" ");
  return { status: res.status, id, pid: Number(pid), res };
}

/** Sends `GET /r?id=ID` and reads its answer. */
export async function ask(c: RawClient, id: string): Promise<Answer> {
  await c.write(GET(`/r?id=${id}`));
  return await readAnswer(c);
}

/** The local port of a client connection (the peer port the server sees). */
export function clientPort(c: RawClient): number {
  return (c.conn.localAddr as Deno.NetAddr).port;
}

/**
 * The client ports of every TCP connection `pid` holds on server port `port`, read from
 * /proc (its fds' socket inodes matched against /proc/PID/net/tcp), sorted. A connection the
 * client closed but the worker did not is still listed (in CLOSE_WAIT): that is the leak this
 * looks for.
 */
export function heldConnections(pid: number, port: number): number[] {
  const inodes = new Set<string>();
  for (const e of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(Deno.readLinkSync(`/proc/${pid}/fd/${e.name}`));
      if (m) inodes.add(m[1]);
    } catch {
      // closed while we looked
    }
  }
  const out: number[] = [];
  for (const line of Deno.readTextFileSync(`/proc/${pid}/net/tcp`).split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !inodes.has(f[9]) || f[3] === "0A") continue; // 0A: LISTEN
    if (parseInt(f[1].split(":")[1], 16) === port) out.push(parseInt(f[2].split(":")[1], 16));
  }
  return out.sort((a, b) => a - b);
}

/** Polls `fn` until it returns true; false after `timeoutMs`. */
export async function eventually(
  fn: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  everyMs = 20,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return true;
    if (Date.now() > deadline) return false;
    await sleep(everyMs);
  }
}

/** How a connection ended, seen from our side. */
export type Ending = "eof" | "reset" | "data" | "open";

/**
 * Reads once from `conn` (up to `timeoutMs`): "eof" (the peer closed: FIN), "reset" (RST),
 * "data" (it answered), or "open" (nothing yet: the read is cancelled by closing `conn`).
 */
export async function endingOf(conn: Deno.Conn, timeoutMs = 3000): Promise<Ending> {
  const buf = new Uint8Array(4096);
  const read = conn.read(buf).then(
    (n): Ending => n === null ? "eof" : "data",
    (err): Ending => {
      if (err instanceof Deno.errors.ConnectionReset) return "reset";
      if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) {
        return "open"; // cancelled by our own close below
      }
      throw err;
    },
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"open">((r) => timer = setTimeout(() => r("open"), timeoutMs));
  const ending = await Promise.race([read, timeout]);
  clearTimeout(timer);
  if (ending === "open") {
    try {
      conn.close();
    } catch {
      // closed already
    }
    await read;
  }
  return ending;
}

/** Waits until `re` (global) matches `app.log()` at least `count` times; throws with the log. */
export async function waitForLines(app: App, re: RegExp, count = 1, timeoutMs = 10_000) {
  let log = "";
  const isThere = async () => (log = await app.log()).match(re)?.length! >= count;
  if (!await eventually(isThere, timeoutMs)) {
    throw new Error(`${re} did not appear ${count} time(s) in:\n${log}`);
  }
}

/** The log lines of `level` ("error", "warn", …) in `log`, without their timestamps. */
export function linesAt(log: string, level: string): string[] {
  const re = new RegExp(`^\\S+ ${level.padEnd(5)} (.*)$`, "gm");
  return [...log.matchAll(re)].map((m) => m[1]);
}

const systemdReason = isAvailable();
let isReasonPrinted = false;

/**
 * Registers `scenario` as two tests, one per manager: `NAME (supervisor)` and `NAME (systemd)`,
 * the latter ignored (with the reason printed once) where a private systemd cannot run. Each
 * test starts its own App and disposes it.
 */
export function testUnderBoth(
  name: string,
  scenario: (app: App) => Promise<void>,
  opts: AppOptions = {},
): void {
  for (const manager of ["supervisor", "systemd"] as const) {
    const isIgnored = manager === "systemd" && systemdReason !== null;
    if (isIgnored && !isReasonPrinted) {
      isReasonPrinted = true;
      console.log(`skip: handoff tests under systemd: ${systemdReason}`);
    }
    Deno.test({
      name: `${name} (${manager})`,
      ignore: isIgnored,
      async fn() {
        await using app = await startApp(manager, opts);
        await scenario(app);
      },
    });
  }
}

export { RawClient, sleep };
