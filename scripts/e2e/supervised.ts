/**
 * @module
 * Starts `apprun serve HANDLER` by hand — the embedded supervisor and its worker — on a port,
 * for the demo and the benchmarks: collects the log, waits until the port accepts, and offers a
 * warm reload (SIGHUP), a cold restart (the control socket's `restart`, as `systemctl
 * restart`) and a stop. Owns the child process and its temp dir until `stop()`.
 */
import { supervisorRequest } from "../../runtime/supervisor/mod.ts";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

/** A running supervisor. */
export interface Supervised {
  readonly pid: number;
  readonly port: number;
  /** Everything the supervisor and its workers logged so far. */
  log(): string;
  /** SIGHUP: a warm reload (the next worker takes over from the running one directly). */
  reload(): void;
  /** The cold path: `systemctl restart`, through the fdstore. Resolves once the new one is ready. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Options for {@linkcode startSupervised}. */
export interface SupervisedOptions {
  /** Handler path relative to the repository. */
  handler: string;
  port: number;
  logLevel?: "error" | "warn" | "info" | "debug";
  /** The address to bind (default 127.0.0.1). */
  host?: string;
  args?: string[];
}

/** Starts the supervisor and resolves once its port accepts connections. */
export async function startSupervised(opts: SupervisedOptions): Promise<Supervised> {
  const dir = await Deno.makeTempDir({ prefix: "apprun-e2e-" });
  const control = `${dir}/control.sock`;
  const child = new Deno.Command(`${ROOT}/bin/apprun`, {
    args: [
      "serve",
      `${ROOT}/${opts.handler}`,
      "--port",
      String(opts.port),
      "--host",
      opts.host ?? "127.0.0.1",
      "--name",
      `e2e-${opts.port}`,
      "--control",
      control,
      ...(opts.args ?? []),
    ],
    env: { APPRUN_LOG: opts.logLevel ?? "info" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const pump = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) text += chunk;
  })();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await child.status;
    await pump;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      (await Deno.connect({ port: opts.port, hostname: "127.0.0.1" })).close();
      break;
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`apprun did not start on port ${opts.port}:\n${text}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    pid: child.pid,
    port: opts.port,
    log: () => text,
    reload: () => child.kill("SIGHUP"),
    async restart() {
      const reply = await supervisorRequest(control, { cmd: "restart" });
      if (!reply.ok) throw new Error(`restart: ${reply.error}`);
    },
    stop,
  };
}
