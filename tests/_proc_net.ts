/**
 * @module
 * What the kernel knows of TCP connections, read from `/proc/net/tcp{,6}` (proc(5)), so a test
 * waits for the condition a sleep stood for: the server has read every byte a client sent (both
 * queues empty), an answer waits unread on our side, the server's send queue backs up, which
 * connections a process still holds. Reads /proc only (no `ss`: not on a fresh machine); owns
 * nothing.
 */
import { RawClient } from "./_net.ts";
import { waitUntil } from "./_poll.ts";

/** One row of /proc/net/tcp or tcp6 (see proc(5)). */
export interface TcpRow {
  localPort: number;
  remotePort: number;
  /** The kernel's state, hex: "01" ESTABLISHED, "08" CLOSE_WAIT, "0A" LISTEN, … */
  state: string;
  /** Bytes written and not yet acknowledged by the peer (queued or in flight). */
  txQueue: number;
  /** Bytes received and not yet read by the socket's owner. */
  rxQueue: number;
  inode: string;
}

/** Every TCP socket of this network namespace, IPv4 and IPv6 (`dir`: /proc/net, /proc/PID/net). */
export function tcpTable(dir = "/proc/net"): TcpRow[] {
  const rows: TcpRow[] = [];
  for (const file of [`${dir}/tcp`, `${dir}/tcp6`]) {
    let text = "";
    try {
      text = Deno.readTextFileSync(file);
    } catch {
      continue; // no IPv6 on this machine
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const [tx, rx] = f[4].split(":").map((h) => parseInt(h, 16));
      rows.push({
        localPort: parseInt(f[1].split(":").at(-1)!, 16),
        remotePort: parseInt(f[2].split(":").at(-1)!, 16),
        state: f[3],
        txQueue: tx,
        rxQueue: rx,
        inode: f[9],
      });
    }
  }
  return rows;
}

/** A client's connection seen from both ends: our socket and the server's. */
interface Ends {
  client?: TcpRow;
  server?: TcpRow;
}

function endsOf(conn: Deno.Conn, table = tcpTable()): Ends {
  const ours = (conn.localAddr as Deno.NetAddr).port;
  const theirs = (conn.remoteAddr as Deno.NetAddr).port;
  return {
    client: table.find((r) => r.localPort === ours && r.remotePort === theirs),
    server: table.find((r) => r.localPort === theirs && r.remotePort === ours),
  };
}

const connOf = (c: RawClient | Deno.Conn) => c instanceof RawClient ? c.conn : c;

/**
 * Waits until the server has read every byte each client sent: our send queue is empty (the
 * server's kernel acknowledged it) and so is the server socket's receive queue (its process
 * read it). What a sleep cannot promise under load: "the old process has read it by now".
 */
export async function waitUntilRead(clients: (RawClient | Deno.Conn)[], timeoutMs = 10_000) {
  await waitUntil(
    () => {
      const table = tcpTable();
      return clients.every((c) => {
        const { client, server } = endsOf(connOf(c), table);
        return client?.txQueue === 0 && server?.rxQueue === 0;
      });
    },
    () => `the server to read what ${clients.length} client(s) sent: ${queues(clients)}`,
    { timeoutMs, everyMs: 2 },
  );
}

/** Waits until bytes from the server wait unread on each client's socket (it began to answer). */
export async function waitUntilAnswered(clients: (RawClient | Deno.Conn)[], timeoutMs = 10_000) {
  await waitUntil(
    () => {
      const table = tcpTable();
      return clients.every((c) =>
        (c instanceof RawClient && c.buffered.length > 0) ||
        (endsOf(connOf(c), table).client?.rxQueue ?? 0) > 0
      );
    },
    () => `an answer on each of ${clients.length} client(s): ${queues(clients)}`,
    { timeoutMs, everyMs: 2 },
  );
}

/** Bytes the server has written to `c` that `c`'s side has not acknowledged yet. */
export function serverSendQueue(c: RawClient | Deno.Conn): number {
  const { server } = endsOf(connOf(c));
  if (!server) throw new Error("no server-side socket for this connection");
  return server.txQueue;
}

function queues(clients: (RawClient | Deno.Conn)[]): string {
  const table = tcpTable();
  return clients.map((c) => {
    const { client, server } = endsOf(connOf(c), table);
    return `client tx ${client?.txQueue} rx ${client?.rxQueue}, server rx ${server?.rxQueue}`;
  }).join("; ");
}

/** The server's end of `c`'s connection, as the kernel lists it (undefined once it is gone). */
export function serverEnd(c: RawClient | Deno.Conn): TcpRow | undefined {
  return endsOf(connOf(c)).server;
}

/** Server-side connections on local `port` still open (ESTABLISHED or CLOSE_WAIT), any owner. */
export function openConnections(port: number): number {
  return tcpTable().filter((r) => r.localPort === port && (r.state === "01" || r.state === "08"))
    .length;
}

/** The inodes of every socket `pid` has open, from /proc/PID/fd (none once it is gone). */
export function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  let entries: Deno.DirEntry[] = [];
  try {
    entries = [...Deno.readDirSync(`/proc/${pid}/fd`)];
  } catch {
    return inodes; // the process is gone
  }
  for (const e of entries) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(Deno.readLinkSync(`/proc/${pid}/fd/${e.name}`));
      if (m) inodes.add(m[1]);
    } catch {
      // closed while we looked
    }
  }
  return inodes;
}

/**
 * The client ports of every TCP connection `pid` holds on server port `port`, sorted: its fds'
 * socket inodes matched against /proc/PID/net/tcp. A connection the client closed but the
 * process did not is still listed (in CLOSE_WAIT): that is the leak this looks for.
 */
export function heldConnections(pid: number, port: number): number[] {
  const inodes = socketInodes(pid);
  return tcpTable(`/proc/${pid}/net`)
    .filter((r) => inodes.has(r.inode) && r.state !== "0A" && r.localPort === port)
    .map((r) => r.remotePort)
    .sort((a, b) => a - b);
}
