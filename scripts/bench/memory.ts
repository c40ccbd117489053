/**
 * Memory per idle keep-alive connection: opens N connections (default 10 000) to apprun,
 * Deno.serve and node:http serving hello world, one request each, and prints the growth of the server's resident
 * set size per connection.
 *
 *   deno run -A scripts/bench/memory.ts [--connections 10000]
 */
import { parseArgs } from "node:util";
import { benchServers, fmt, freePort, start } from "./_lib.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { connections: { type: "string", default: "10000" } },
});
const n = Number(values.connections);
const enc = new TextEncoder();

function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m ? Number(m[1]) * 1024 : NaN;
}

async function measure(name: string, startIt: (port: number) => ReturnType<typeof start>) {
  const port = freePort();
  const srv = await startIt(port);
  const conns: Deno.TcpConn[] = [];
  try {
    const warm = await Deno.connect({ port, hostname: "127.0.0.1" });
    await warm.write(enc.encode("GET / HTTP/1.1\r\nHost: m\r\n\r\n"));
    await warm.read(new Uint8Array(4096));
    await new Promise((r) => setTimeout(r, 300));
    const before = rss(srv.child.pid);
    const buf = new Uint8Array(4096);
    for (let i = 0; i < n; i += 250) {
      const batch = await Promise.all(
        Array.from(
          { length: Math.min(250, n - i) },
          () => Deno.connect({ port, hostname: "127.0.0.1" }),
        ),
      );
      await Promise.all(batch.map(async (c) => {
        await c.write(enc.encode("GET / HTTP/1.1\r\nHost: m\r\n\r\n"));
        await c.read(buf);
      }));
      conns.push(...batch);
    }
    await new Promise((r) => setTimeout(r, 500));
    const after = rss(srv.child.pid);
    console.log(
      `${name.padEnd(11)} ${fmt((after - before) / n)} bytes per idle connection (RSS ${
        fmt(before / 2 ** 20, 1)
      } → ${fmt(after / 2 ** 20, 1)} MiB)`,
    );
    warm.close();
  } finally {
    for (const c of conns) c.close();
    await srv.stop();
  }
}

console.log(`memory with ${n} idle keep-alive connections:`);
for (const s of benchServers()) await measure(s.name, (p) => s.start(p, "hello"));
