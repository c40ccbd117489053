/**
 * @module
 * The reload helper (docs/design.md, "Warm reload"): the `ExecReload=` process of a warm
 * reload, under systemd and under apprun's supervisor alike (`apprun takeover -- COMMAND…`). It
 * starts COMMAND — the service's own `ExecStart=` — as the next process, through a shell that
 * exits at once, so the next process is re-parented to the manager (a subreaper, or PID 1) and
 * becomes the manager's own child: systemd follows the exit of a main pid it did not fork
 * only through its cgroup, and would SIGKILL it at the next stop before it could hand off.
 * The next process connects to the running one ($MAINPID) itself; the helper relays what it
 * writes to stderr (keeping the start of it: the reason of a failed start), and when it says
 * it serves what it took over, sends `MAINPID=` and `BARRIER=1` (NotifyAccess=exec permits the
 * control process) and tells it "main". Exit 0 then; 1 when the next process did not take
 * over, the running one serving on; {@linkcode NO_TAKEOVER} when the running process offers
 * no takeover (a version from before warm reloads, or no RuntimeDirectory=): restart instead.
 *
 * Owns the next process until it is the main process (SIGTERM to it when the helper is
 * stopped first), the channel, and the stderr pipe.
 */
import type { Logger } from "../log.ts";
import { Notifier } from "../notify.ts";
import {
  closeFd,
  pidfdOpen,
  pipe,
  pollFds,
  POLLIN,
  readFd,
  reapPidfd,
  sendSignal,
  SIGNALS,
  SOCK_SEQPACKET,
  socketPair,
  spawnProcess,
  writeAll,
} from "../sys/mod.ts";
import { receiveTakeover, sendTakeover, type TakeoverMessage } from "../handoff/mod.ts";
import { runtimeDirectory, takeoverSocketPath } from "./takeover_host.ts";
import { TAKEOVER_ENV, type TakeoverSpec } from "./takeover_client.ts";

/** Exit status: the running process offers no warm takeover; a restart is the way. */
export const NO_TAKEOVER = 69;
/** The start of what the next process wrote, kept for the reason of a failure. */
const MAX_KEPT = 16 * 1024;

/** The outcome of {@linkcode runReloadHelper}. */
export interface ReloadOutcome {
  code: number;
  /** One line: what happened. */
  line: string;
}

/** Runs the helper for `command` (argv, absolute path first). Returns the exit status and line. */
export async function runReloadHelper(command: string[], log: Logger): Promise<ReloadOutcome> {
  const env = Deno.env.toObject();
  const oldPid = Number(env.MAINPID);
  const dir = runtimeDirectory();
  const notifier = Notifier.fromEnv();
  if (!(oldPid > 0) || notifier === null) {
    return {
      code: NO_TAKEOVER,
      line: "not a reload: $MAINPID and $NOTIFY_SOCKET come from the service manager " +
        "(ExecReload= with NotifyAccess=exec)",
    };
  }
  const socket = dir === null ? null : takeoverSocketPath(dir, oldPid);
  if (socket === null || !isSocket(socket)) {
    const line = `pid ${oldPid} offers no warm takeover (${
      socket ?? "no $RUNTIME_DIRECTORY: the unit needs RuntimeDirectory="
    }): restart it instead`;
    tellManager(notifier, line);
    return { code: NO_TAKEOVER, line };
  }
  const [channel, childChannel] = socketPair(SOCK_SEQPACKET);
  const [errRead, errWrite] = pipe({ isNonBlocking: true });
  const spec: TakeoverSpec = { socket, pid: oldPid, channel: 3, stderr: 4 };
  delete env.MAINPID;
  env[TAKEOVER_ENV] = JSON.stringify(spec);
  let shell: number;
  let shellPidfd = -1;
  try {
    // `&`: the shell forks the next process and exits; the manager inherits it.
    shell = spawnProcess({
      path: "/bin/sh",
      args: ["/bin/sh", "-c", '"$@" &', "sh", ...command],
      env,
      passFds: [childChannel, 2],
      stderrFd: errWrite,
    });
    shellPidfd = pidfdOpen(shell);
  } finally {
    closeFd(childChannel);
    closeFd(errWrite);
  }
  const next = new NextProcess(channel, errRead, shell);
  // The shell exits at once (its `&` child lives on): reap it, or it stays a zombie.
  pollFds([{ fd: shellPidfd, events: POLLIN }], 5000).then(() => {
    reapPidfd(shellPidfd);
    closeFd(shellPidfd);
  });
  const stop = () => {
    log.warn("stopped: ending the next process, the running one serves on");
    next.kill();
    Deno.exit(1);
  };
  Deno.addSignalListener("SIGTERM", stop);
  try {
    const result = await next.outcome();
    if (result.t !== "resumed") {
      await next.drainOutput(1000);
      const why = next.why(result);
      tellManager(notifier, why);
      return { code: 1, line: why };
    }
    // Only a process the manager inherited is one it follows as its own (see above).
    if (parentOf(result.pid) === Deno.pid) {
      next.kill();
      const why = `pid ${result.pid} is still this helper's child, not the manager's`;
      tellManager(notifier, why);
      return { code: 1, line: why };
    }
    notifier.mainPid(result.pid);
    if (!notifier.barrier(5000)) log.warn("BARRIER=1 not acknowledged within 5 s");
    sendTakeover(channel, { t: "main" });
    // It closes the channel once its stderr is its own: what it wrote before is in the pipe.
    await next.closed(2000);
    await next.drainOutput(0);
    return {
      code: 0,
      line: `pid ${result.pid} took over ${result.carried} connections from pid ${oldPid} ` +
        `(serving ${result.pauseMs.toFixed(1)} ms after pid ${oldPid} stopped reading)`,
    };
  } finally {
    Deno.removeSignalListener("SIGTERM", stop);
    closeFd(channel);
    closeFd(errRead);
    notifier.close();
  }
}

/** The manager's record of why a reload failed (the supervisor answers the request with it). */
function tellManager(notifier: Notifier, why: string): void {
  try {
    notifier.status(`reload failed: ${oneLine(why)}`);
    notifier.barrier(2000);
  } catch {
    // The manager is gone: the log says it.
  }
}

/** A process's parent pid (/proc/PID/stat), or 0 when it is gone. */
function parentOf(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return 0;
  }
}

function isSocket(path: string): boolean {
  try {
    return Deno.statSync(path).isSocket === true;
  } catch {
    return false;
  }
}

/** The next process as the helper sees it: its channel, its stderr, its pid once it says it. */
class NextProcess {
  readonly #channel: number;
  readonly #stderr: number;
  readonly #shell: number;
  #pid = 0;
  #kept = "";
  #isStderrOpen = true;
  readonly #decoder = new TextDecoder();

  constructor(channel: number, stderr: number, shell: number) {
    this.#channel = channel;
    this.#stderr = stderr;
    this.#shell = shell;
  }

  /** "resumed", "failed", or "gone" (the channel closed without a word). */
  async outcome(): Promise<TakeoverMessage | { t: "gone" }> {
    for (;;) {
      const [fromChannel] = await pollFds([
        { fd: this.#channel, events: POLLIN },
        ...(this.#isStderrOpen ? [{ fd: this.#stderr, events: POLLIN }] : []),
      ], -1);
      this.#relay();
      if (fromChannel === 0) continue;
      const got = await receiveTakeover(this.#channel, 1000).catch(() => "closed" as const);
      if (got === "closed") return { t: "gone" };
      if (got.message.t === "hello") {
        this.#pid = got.message.pid;
        continue;
      }
      if (got.message.t === "resumed" || got.message.t === "failed") return got.message;
    }
  }

  /**
   * Relays what is on the next process's stderr, and what comes within `ms` (until it closes:
   * after a failure it exits; once main, it keeps another copy and writes elsewhere).
   */
  async drainOutput(ms: number): Promise<void> {
    const deadline = performance.now() + ms;
    this.#relay();
    while (this.#isStderrOpen && performance.now() < deadline) {
      await pollFds([{ fd: this.#stderr, events: POLLIN }], deadline - performance.now());
      this.#relay();
    }
  }

  /** Waits (≤ `ms`) for the channel to close, relaying stderr meanwhile. */
  async closed(ms: number): Promise<void> {
    const deadline = performance.now() + ms;
    while (performance.now() < deadline) {
      const [fromChannel] = await pollFds([
        { fd: this.#channel, events: POLLIN },
        ...(this.#isStderrOpen ? [{ fd: this.#stderr, events: POLLIN }] : []),
      ], deadline - performance.now());
      this.#relay();
      if (fromChannel !== 0) return;
    }
  }

  /**
   * Why it did not take over: its own words (`failed`), else what it wrote before it exited
   * (Deno's report of a module that does not parse comes before apprun runs).
   */
  why(result: TakeoverMessage | { t: "gone" }): string {
    if (result.t === "failed") return result.why;
    const said = stripped(this.#kept);
    const who = `the next process${this.#pid ? ` (pid ${this.#pid})` : ""}`;
    return said !== ""
      ? `the new version does not load: ${said}`
      : `${who} exited before taking over`;
  }

  /** SIGTERM to the next process (and the shell, if it still runs). */
  kill(): void {
    if (this.#pid > 0) sendSignal(this.#pid, SIGNALS.SIGTERM);
    sendSignal(this.#shell, SIGNALS.SIGKILL);
  }

  #relay(): void {
    const buf = new Uint8Array(16 * 1024);
    while (this.#isStderrOpen) {
      let n: number | "again";
      try {
        n = readFd(this.#stderr, buf);
      } catch {
        n = 0;
      }
      if (n === "again") return;
      if (n === 0) {
        this.#isStderrOpen = false;
        return;
      }
      const chunk = buf.subarray(0, n);
      writeAll(2, chunk);
      if (this.#kept.length < MAX_KEPT) this.#kept += this.#decoder.decode(chunk, { stream: true });
    }
  }
}

/**
 * What a failed start said, as one reason: colours and Deno's Rust backtrace removed, one line
 * without its `apprun: ` prefix, several kept as they are (Deno's report of a syntax error).
 */
export function stripped(said: string): string {
  // deno-lint-ignore no-control-regex
  const all = said.trim().replace(/\x1b\[[0-9;]*m/g, "");
  const text = all.replace(/\n*Stack backtrace:\n[^]*$/, "").trim().slice(0, MAX_KEPT);
  const lines = text.split("\n");
  return lines.length === 1 ? lines[0].replace(/^apprun: /, "") : `\n${text}`;
}

/** A one-line form of `why` (STATUS= holds one line). */
export function oneLine(why: string): string {
  return why.trim().split("\n").map((l) => l.trim()).filter((l) => l && !/^\d*\s*\|/.test(l))
    .join(" ").slice(0, 1000);
}
