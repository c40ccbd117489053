/**
 * Helpers for the package tests: building .debs with `apprun package` (a real process),
 * running real dpkg against the private systemd user manager through
 * scripts/systemd/dpkg-bridge.sh (the package's scripts run as shipped; see that script for
 * what is bridged and why), and a prober that opens a new connection every few ms and counts
 * the ones that fail — what a client arriving during an upgrade sees.
 */
import { APPRUN, ROOT } from "../_proc.ts";
import { sleep } from "../_poll.ts";
import type { UserManager } from "../_systemd.ts";
import { BUILD_CACHE } from "../upgrade/_util.ts";

const BRIDGE = `${ROOT}/scripts/systemd/dpkg-bridge.sh`;
const dec = new TextDecoder();

/** Tools the package tests need besides systemd: a reason when one is missing, else null. */
export function missingTools(tools: string[]): string | null {
  const path = (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":");
  for (const t of tools) {
    if (!path.some((d) => exists(`${d}/${t}`))) {
      return `${t} is not installed (.ci/run installs it)`;
    }
  }
  return null;
}

function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

/** A finished command. */
export interface Ran {
  code: number;
  out: string;
}

/** Options of {@linkcode buildDeb}. */
export interface DebOptions {
  name: string;
  version: string;
  port: number;
  style?: "handoff" | "stop-start";
  dir: string;
}

/** `apprun package HANDLER …` into `dir`; returns the .deb's path. */
export async function buildDeb(handler: string, o: DebOptions): Promise<string> {
  const output = `${o.dir}/${o.name}_${o.version}_${o.style ?? "handoff"}.deb`;
  const r = await new Deno.Command(APPRUN, {
    args: [
      "package",
      handler,
      "--name",
      o.name,
      "--version",
      o.version,
      "--port",
      String(o.port),
      "--maintainer",
      "apprun tests <tests@apprun.example.org>",
      "--upgrade-style",
      o.style ?? "handoff",
      "-o",
      output,
    ],
    env: { APPRUN_CACHE_DIR: BUILD_CACHE },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (r.code !== 0) throw new Error(`apprun package failed: ${dec.decode(r.stderr)}`);
  return output;
}

/** dpkg and friends, run "on the system" of a private user manager. */
export class DpkgBridge {
  readonly m: UserManager;

  private constructor(m: UserManager) {
    this.m = m;
  }

  static async setup(m: UserManager): Promise<DpkgBridge> {
    const r = await new Deno.Command(BRIDGE, {
      args: ["setup", String(m.pid), m.dir],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (r.code !== 0) throw new Error(`dpkg-bridge setup: ${dec.decode(r.stderr)}`);
    return new DpkgBridge(m);
  }

  /** Runs `argv` in the manager's namespace; stdout and stderr together. */
  async run(argv: string[]): Promise<Ran> {
    const r = await new Deno.Command(BRIDGE, {
      args: ["run", String(this.m.pid), this.m.dir, ...argv],
      env: { ...this.m.env, LC_ALL: "C" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
  }

  /**
   * The drop-in the bridge cannot do without: the manager is a user manager running as root,
   * which has no dynamic users and whose notify socket ProtectHome=yes would hide.
   */
  async rootUserManagerDropIn(name: string): Promise<void> {
    const dir = `${this.m.unitDir}/${name}.service.d`;
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(
      `${dir}/root-user-manager.conf`,
      "[Service]\nDynamicUser=no\nProtectHome=read-only\n",
    );
  }
}

/** What the prober saw. */
export interface ProbeReport {
  attempts: number;
  failed: number;
  errors: string[];
}

/** New connections (`Connection: close`) every `everyMs`, each a GET /version; failures counted. */
export class Prober {
  readonly report: ProbeReport = { attempts: 0, failed: 0, errors: [] };
  #isStopped = false;
  readonly #done: Promise<void>;

  constructor(port: number, everyMs = 25) {
    this.#done = (async () => {
      while (!this.#isStopped) {
        this.report.attempts++;
        const error = await probeOnce(port);
        if (error !== null) {
          this.report.failed++;
          if (this.report.errors.length < 5) this.report.errors.push(error);
        }
        await sleep(everyMs);
      }
    })();
  }

  async stop(): Promise<ProbeReport> {
    this.#isStopped = true;
    await this.#done;
    return this.report;
  }
}

/** One fresh connection and request; null when a 200 came, else what went wrong. */
async function probeOnce(port: number): Promise<string | null> {
  let conn: Deno.TcpConn | undefined;
  const timer = setTimeout(() => conn?.close(), 10_000);
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(
      new TextEncoder().encode("GET /version HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n"),
    );
    let text = "";
    const buf = new Uint8Array(1024);
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      text += dec.decode(buf.subarray(0, n));
    }
    return text.startsWith("HTTP/1.1 200") ? null : `answer: ${text.split("\r\n")[0] || "(none)"}`;
  } catch (err) {
    return `${(err as Error).name}: ${(err as Error).message}`;
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch {
      // Already closed.
    }
  }
}
