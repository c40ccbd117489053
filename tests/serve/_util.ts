/**
 * Helpers for the process-level tests of `apprun serve`: free ports, unix-socket clients, a
 * NOTIFY_SOCKET receiver (a real datagram socket, as systemd binds it), a log waiter that
 * notices when the process died, temp dirs and a seeded PRNG. Nothing here mocks a socket, a
 * process or a clock. Owns only what it creates; every resource has a dispose.
 */
import { Proc, RawClient, sleep, spawn, type SpawnOptions } from "../_helpers.ts";
import {
  bindTo,
  closeFd,
  encodeSockAddr,
  libc,
  receiveMessage,
  sendMessage,
  setIntOption,
  SO_PASSCRED,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
  unixSocket,
} from "../../runtime/sys/mod.ts";

/** A GET request with a Host header (and extra header lines, each ending in CRLF). */
export const GET = (path: string, extra = "") => `GET ${path} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;

/** A port that was free a moment ago on `hostname` (bind 0, read it, close). */
export function freePort(hostname = "127.0.0.1"): number {
  const l = Deno.listen({ hostname, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * A {@linkcode RawClient} on a unix stream socket. RawClient's constructor is private in
 * TypeScript only; it takes any `Deno.Conn`, and duplicating its 200 lines here would be worse.
 */
export async function connectUnix(path: string): Promise<RawClient> {
  const conn = await Deno.connect({ transport: "unix", path });
  const Ctor = RawClient as unknown as new (c: Deno.Conn) => RawClient;
  return new Ctor(conn);
}

/** A temp dir removed (recursively) at the end of the scope. */
export async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "apprun-serve-test-" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}

/**
 * Waits until `re` matches the process output. Unlike `Proc.waitFor`, fails at once (with the
 * output) when the process exits first, and leaves no timer behind.
 */
export async function waitForLog(
  proc: Proc,
  re: RegExp,
  timeoutMs = 15_000,
): Promise<RegExpMatchArray> {
  let isExited = false;
  const exited = proc.status.then(() => isExited = true);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = proc.log.match(re);
    if (m) return m;
    if (isExited) {
      await exited;
      throw new Error(`process exited before ${re} appeared; output:\n${proc.log}`);
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}; output:\n${proc.log}`);
    await sleep(10);
  }
}

/** One datagram received on the notify socket. */
export interface NotifyMessage {
  /** The KEY=VALUE lines. */
  lines: string[];
  /** Date.now() when the test process took it off the socket. */
  at: number;
  /** The sender's pid, as the kernel vouches for it (SO_PASSCRED). */
  pid: number | null;
}

/**
 * A NOTIFY_SOCKET: an AF_UNIX datagram socket bound to a path or an abstract `@name`, with
 * SO_PASSCRED on (as systemd does) so each message carries its sender's pid. A polling loop
 * (5 ms) collects messages; `close()` stops it and closes the fd.
 */
export class NotifyReceiver implements AsyncDisposable {
  /** The value for NOTIFY_SOCKET. */
  readonly address: string;
  readonly messages: NotifyMessage[] = [];
  #fd: number;
  #isClosed = false;
  #loop: Promise<void>;

  constructor(address: string) {
    this.address = address;
    this.#fd = unixSocket(SOCK_DGRAM | SOCK_NONBLOCK);
    try {
      setIntOption(this.#fd, SOL_SOCKET, SO_PASSCRED, 1);
      bindTo(this.#fd, { transport: "unix", path: address });
    } catch (err) {
      closeFd(this.#fd);
      throw err;
    }
    this.#loop = this.#poll();
  }

  async #poll(): Promise<void> {
    const dec = new TextDecoder();
    while (!this.#isClosed) {
      for (;;) {
        const m = receiveMessage({ fd: this.#fd, maxFds: 4 });
        if (m === "again") break;
        for (const fd of m.fds) closeFd(fd); // BARRIER=1 pipes: closing is the answer
        const lines = dec.decode(m.data).split("\n").filter((l) => l !== "");
        this.messages.push({ lines, at: Date.now(), pid: m.credentials?.pid ?? null });
      }
      await sleep(5);
    }
  }

  /** Messages that have a line `KEY=…` (or exactly `line` when it contains `=`). */
  having(line: string): NotifyMessage[] {
    const isKey = !line.includes("=");
    return this.messages.filter((m) =>
      m.lines.some((l) => isKey ? l.startsWith(`${line}=`) : l === line)
    );
  }

  /** Waits for the first message (from index `from`) that satisfies `pred`. */
  async waitFor(
    pred: (m: NotifyMessage) => boolean,
    { timeoutMs = 15_000, from = 0 } = {},
  ): Promise<NotifyMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.messages.slice(from).find(pred);
      if (m) return m;
      if (Date.now() > deadline) {
        throw new Error(
          `no matching notify message in ${timeoutMs} ms; got ${JSON.stringify(this.messages)}`,
        );
      }
      await sleep(5);
    }
  }

  async close(): Promise<void> {
    if (this.#isClosed) return;
    this.#isClosed = true;
    await this.#loop;
    closeFd(this.#fd);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Leaves a socket file at `path` as a crashed server would: bound, never unlinked. */
export function leaveStaleSocket(path: string): void {
  const fd = unixSocket(SOCK_STREAM);
  try {
    bindTo(fd, { transport: "unix", path });
  } finally {
    closeFd(fd);
  }
}

/**
 * Wakes whoever listens on the unix socket `path` of `type` without speaking to it: one
 * datagram for SOCK_DGRAM, a connection (closed at once) for SOCK_SEQPACKET/SOCK_STREAM.
 */
export function poke(path: string, type: number): void {
  const to = { transport: "unix", path } as const;
  const fd = unixSocket(type);
  try {
    if (type === SOCK_DGRAM) sendMessage({ fd, data: new Uint8Array([0x78]), to });
    else {
      const sa = encodeSockAddr(to);
      if (libc.connect(fd, sa, sa.length) < 0) throw new Error(`cannot connect to ${path}`);
    }
  } finally {
    closeFd(fd);
  }
}

/** mulberry32: a small seeded PRNG, so a failing garbage payload can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Runs `systemd-socket-activate LISTEN… -- COMMAND…`. `build` picks fresh ports on each call:
 * a port found free may be taken before the activator binds it, so this retries (3 times)
 * when the activator cannot listen. Resolves once every socket is listening (the activator
 * only execs COMMAND, keeping its pid, when the first connection or datagram arrives).
 */
export async function socketActivate<T>(
  build: () => { args: string[]; info: T },
  opts: SpawnOptions = {},
): Promise<{ proc: Proc; info: T }> {
  for (let attempt = 1;; attempt++) {
    const { args, info } = build();
    const count = args.filter((a) => a === "-l").length;
    const proc = spawn("systemd-socket-activate", args, opts);
    try {
      await waitForLog(proc, new RegExp(`(Listening on .* as \\d+\\.\\n[^]*){${count}}`));
      return { proc, info };
    } catch (err) {
      proc.kill("SIGKILL");
      await proc.wait();
      if (attempt < 3 && /Address already in use/.test(proc.log)) continue;
      throw err;
    }
  }
}
