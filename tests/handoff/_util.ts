/**
 * @module
 * Helpers for the handoff proofs: one {@linkcode App} shape over the two managers that restart
 * apprun the same way — the embedded supervisor (`apprun serve`: the control socket's
 * `restart`, cold, through the fdstore; SIGHUP, a warm reload) and a real systemd 252 user
 * manager (`systemctl --user restart` and `reload`, on the units `units/` renders, through
 * `_systemd_app.ts`) — so each scenario runs unchanged under both, and the fixture's
 * `<id> <pid>` answers read off a raw client. Disposing an App ends every process, manager and
 * temp dir it started; nothing is mocked. Sockets and /proc views are `_net.ts`'s.
 */
import assert from "node:assert/strict";
import { APPRUN, DENO, FIXTURES, type Proc, spawn } from "../_proc.ts";
import { GET, type HttpResponse, RawClient } from "../_net.ts";
import { waitUntil } from "../_poll.ts";
import { skipWithoutSystemd, startUserManager, type UserManager } from "../_systemd.ts";
import { installApp } from "../_systemd_app.ts";
import { supervisorRequest } from "../../runtime/supervisor/mod.ts";

/** The spoiled bundles tests/fixtures/planter.ts leaves (its module comment says how). */
export type Plant =
  | "corrupt-state"
  | "future-version"
  | "oversize-state"
  | "empty-bundle"
  | "missing-bundle";

/** Which manager runs apprun. */
export type ManagerKind = "supervisor" | "systemd";

/** Options for {@linkcode startApp}. */
export interface AppOptions {
  /** A file in tests/fixtures (default `handoff.ts`: answers `<id> <pid>`). */
  fixture?: string;
  /**
   * The first process is not apprun but planter.ts, an old process that leaves this spoiled
   * bundle (through tests/fixtures/planted_app.sh, the service's command); apprun serves the
   * fixture from the first restart on.
   */
  plant?: Plant;
  /** More `apprun serve` arguments. */
  args?: string[];
  /** Set in the environment of every process of the service. */
  env?: Record<string, string>;
  /** How long a start or a reload may take, s (`--start-timeout`, TimeoutStartSec=). */
  timeoutStart?: number;
}

/** apprun serving a fixture under a manager that can restart it. */
export interface App extends AsyncDisposable {
  readonly manager: ManagerKind;
  readonly port: number;
  /** The current worker's pid. */
  pid(): Promise<number>;
  /** Restarts the worker (cold: through the fdstore); resolves with the new worker's pid once ready. */
  restart(): Promise<number>;
  /** Reloads (warm: the next worker takes over directly); resolves with its pid once it is main. */
  reload(): Promise<number>;
  /** Reloads, success or not: what the manager answered (a failure's reason, where it says one). */
  tryReload(): Promise<{ ok: boolean; message: string }>;
  /** How many fds the manager's fdstore holds. */
  storedCount(): Promise<number>;
  /** Everything apprun logged so far (every worker; the supervisor's own lines too). */
  log(): Promise<string>;
  /** The manager's pid: the supervisor, or the systemd user manager. */
  readonly managerPid: number;
  /** A directory every process of the service may write (`$APP_FILES`: what fixtures leave). */
  readonly dir: string;
}

/** Starts apprun on `manager` (the caller checks `skipWithoutSystemd()` for systemd). */
export function startApp(manager: ManagerKind, opts: AppOptions = {}): Promise<App> {
  return manager === "supervisor" ? startSupervised(opts) : startSystemd(opts);
}

const READY_RE = /generation (\d+) ready: pid (\d+)/g;

/** What runs the service: `apprun`, or the planter's command line for `plant`. */
function serviceCommand(opts: AppOptions, dir: string) {
  if (opts.plant === undefined) return { exe: APPRUN, env: { ...opts.env, APP_FILES: dir } };
  return {
    exe: `${FIXTURES}/planted_app.sh`,
    env: {
      ...opts.env,
      APP_FILES: dir,
      PLANT: opts.plant,
      PLANT_MARK: `${dir}/planted`,
      APPRUN,
      DENO,
    },
  };
}

/** `apprun serve FIXTURE --port 0` by hand: the embedded supervisor and its worker. */
export async function startSupervised(
  opts: AppOptions = {},
): Promise<App & { proc: Proc; control: string }> {
  const dir = await Deno.makeTempDir({ prefix: "apprun-handoff-" });
  const control = `${dir}/control.sock`;
  const service = serviceCommand(opts, dir);
  const env: Record<string, string> = { APPRUN_LOG: "info", ...service.env };
  // With a plant, the supervisor (apprun itself) runs planted_app.sh as its worker.
  const bin = opts.plant === undefined ? [] : ["--bin", service.exe];
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
    ...bin,
    ...(opts.args ?? []),
    ...(opts.timeoutStart ? ["--start-timeout", `${opts.timeoutStart}s`] : []),
  ], { env });
  let isExited = false;
  proc.status.then(() => isExited = true);
  const readyLines = () => [...proc.log.matchAll(READY_RE)];
  // Fails at once (with the output) when the supervisor exits first.
  const waitReady = async (count: number): Promise<number> => {
    const line = await waitUntil(
      () => {
        if (isExited) throw new Error(`the supervisor exited; its output:\n${proc.log}`);
        return readyLines()[count - 1];
      },
      () => `READY=1 number ${count}; supervisor output:\n${proc.log}`,
      { timeoutMs: 15_000, everyMs: 5 },
    );
    return Number(line[2]);
  };
  try {
    await waitReady(1);
    const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(proc.log)![1]);
    return {
      manager: "supervisor",
      port,
      proc,
      managerPid: proc.pid,
      dir,
      control,
      pid: () => Promise.resolve(Number(readyLines().at(-1)![2])),
      async restart() {
        const count = readyLines().length;
        const reply = await supervisorRequest(control, { cmd: "restart" });
        assert.ok(reply.ok, JSON.stringify(reply));
        return await waitReady(count + 1);
      },
      async reload() {
        const count = readyLines().length;
        proc.kill("SIGHUP");
        return await waitReady(count + 1);
      },
      async tryReload() {
        const reply = await supervisorRequest(control, { cmd: "reload" });
        return { ok: reply.ok, message: reply.ok ? "" : reply.error };
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

/** apprun as app.service (socket-activated) under a private systemd 252 user manager. */
export async function startSystemd(opts: AppOptions = {}): Promise<App & { m: UserManager }> {
  const m = await startUserManager();
  try {
    const dir = `${m.runtimeDir}/app-files`; // outside PrivateTmp=, writable by the service
    await Deno.mkdir(dir);
    const service = serviceCommand(opts, dir);
    const fixture = opts.fixture ?? "handoff.ts";
    const app = await installApp(m, {
      fixture,
      args: opts.args,
      environment: { APPRUN_LOG: "info", ...service.env },
      readWritePaths: [dir],
      timeoutStart: opts.timeoutStart,
      ...(opts.plant === undefined ? {} : {
        execStart: [
          service.exe,
          ...["serve", `${FIXTURES}/${fixture}`, "--idle-timeout", "300s", ...opts.args ?? []],
        ],
      }),
    });
    await m.start("app.service");
    const pid = async () => Number(await m.show("app.service", "MainPID"));
    return {
      manager: "systemd",
      port: app.port,
      m,
      managerPid: m.pid,
      dir,
      pid,
      async restart() {
        const r = await m.systemctl("restart", "app.service");
        assert.equal(r.code, 0, `systemctl restart: ${r.stderr}\n${await m.log()}`);
        return await pid();
      },
      async reload() {
        const r = await m.systemctl("reload", "app.service");
        assert.equal(r.code, 0, `systemctl reload: ${r.stderr}\n${await app.log()}`);
        return await pid();
      },
      async tryReload() {
        const r = await m.systemctl("reload", "app.service");
        const result = await m.show("app.service", "ReloadResult");
        return { ok: r.code === 0, message: `${r.stderr.trim()} (ReloadResult=${result})` };
      },
      storedCount: async () => Number(await m.show("app.service", "NFileDescriptorStore")),
      log: app.log,
      [Symbol.asyncDispose]: () => m.stop(),
    };
  } catch (err) {
    await m.stop();
    throw err;
  }
}

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

/** Waits until `re` (global) matches `app.log()` at least `count` times; throws with the log. */
export async function waitForLines(
  app: Pick<App, "log">,
  re: RegExp,
  count = 1,
  timeoutMs = 10_000,
) {
  let log = "";
  await waitUntil(
    async () => ((log = await app.log()).match(re)?.length ?? 0) >= count,
    () => `${re} ${count} time(s) in:\n${log}`,
    { timeoutMs, everyMs: 5 },
  );
}

/** The log lines of `level` ("error", "warn", …) in `log`, without their timestamps. */
export function linesAt(log: string, level: string): string[] {
  const re = new RegExp(`^\\S+ ${level.padEnd(5)} (.*)$`, "gm");
  return [...log.matchAll(re)].map((m) => m[1]);
}

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
    const isIgnored = manager === "systemd" && skipWithoutSystemd() !== null;
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

/** The two ways to the next process: cold (`restart`, through the fdstore) and warm (`reload`). */
export type HandoffPath = "restart" | "reload";

/** An App whose `restart()` takes one path, and the old process's line when it begins. */
export interface PathApp extends App {
  readonly path: HandoffPath;
  /** The old process's log line (global) when the handoff begins on this path. */
  readonly handingOff: RegExp;
}

/**
 * Registers `scenario` four times: under each manager, on each path (`NAME (supervisor,
 * restart)`, …). In the scenario, `app.restart()` takes the path of the test.
 */
export function testUnderAll(
  name: string,
  scenario: (app: PathApp) => Promise<void>,
  opts: AppOptions = {},
): void {
  for (const manager of ["supervisor", "systemd"] as const) {
    for (const path of ["restart", "reload"] as const) {
      const isIgnored = manager === "systemd" && skipWithoutSystemd() !== null;
      Deno.test({
        name: `${name} (${manager}, ${path})`,
        ignore: isIgnored,
        async fn() {
          await using app = await startApp(manager, opts);
          const handingOff = path === "reload"
            ? /takes over: handing over/g
            : /SIGTERM: handing off/g;
          await scenario({
            ...app,
            path,
            handingOff,
            restart: path === "reload" ? app.reload : app.restart,
          });
        },
      });
    }
  }
}
