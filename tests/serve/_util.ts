/**
 * Helpers for the process-level tests of `apprun serve`: a NOTIFY_SOCKET receiver (a real
 * datagram socket, as systemd binds it), socket activation through `systemd-socket-activate`,
 * stale and poked unix sockets, and a seeded PRNG. Nothing here mocks a socket, a process or a
 * clock. Owns only what it creates; every resource has a dispose.
 */
import { type Proc, spawn, type SpawnOptions, which } from "../_proc.ts";
import { sleep, waitUntil } from "../_poll.ts";
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
    while (!this.#isClosed) {
      this.flush();
      await sleep(5);
    }
  }

  /** Takes every datagram waiting on the socket now (the poll does this every 5 ms). */
  flush(): void {
    for (;;) {
      const m = receiveMessage({ fd: this.#fd, maxFds: 4 });
      if (m === "again") return;
      for (const fd of m.fds) closeFd(fd); // BARRIER=1 pipes: closing is the answer
      const lines = new TextDecoder().decode(m.data).split("\n").filter((l) => l !== "");
      this.messages.push({ lines, at: Date.now(), pid: m.credentials?.pid ?? null });
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
  waitFor(
    pred: (m: NotifyMessage) => boolean,
    { timeoutMs = 15_000, from = 0 } = {},
  ): Promise<NotifyMessage> {
    return waitUntil(
      () => this.messages.slice(from).find(pred),
      () => `a matching notify message; got ${JSON.stringify(this.messages)}`,
      { timeoutMs, everyMs: 5 },
    );
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

/** Why {@linkcode socketActivate} cannot run here (systemd's tool is missing), or null. */
export const noSocketActivate: string | null = which("systemd-socket-activate")
  ? null
  : "systemd-socket-activate is not installed (apt-get install systemd)";

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
      await proc.waitFor(new RegExp(`(Listening on .* as \\d+\\.\\n[^]*){${count}}`));
      return { proc, info };
    } catch (err) {
      proc.kill("SIGKILL");
      await proc.wait();
      if (attempt < 3 && /Address already in use/.test(proc.log)) continue;
      throw err;
    }
  }
}
