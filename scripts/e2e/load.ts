/**
 * @module
 * A keep-alive load generator for handoff proofs and benchmarks: N raw TCP clients, each sending
 * one request at a time on its own connection and checking that the response answers exactly
 * that request (the handler echoes an id). Counts every failure kind separately — a reset, an
 * early close, a wrong or duplicated answer — and records which server pids answered each
 * connection, so a test can prove connections lived through restarts. Uses Deno's own TCP
 * client, not apprun's engine.
 *
 *   deno run -A scripts/e2e/load.ts --port 8080 --connections 200 --seconds 10
 */
import { parseArgs } from "node:util";

/** Options for {@linkcode runLoad}. */
export interface LoadOptions {
  port: number;
  hostname?: string;
  connections: number;
  /** Path; `{id}` is replaced by a unique request id. The answer must be `<id> <pid>`. */
  path?: string;
  /** Stop when this resolves (or after `durationMs`). */
  until?: Promise<unknown>;
  durationMs?: number;
  /** Pause between a response and the next request on a connection, ms. */
  thinkMs?: number;
}

/** What a load run saw. */
export interface LoadReport {
  requests: number;
  answered: number;
  /** Connections reset by the peer. */
  resets: number;
  /** Connections closed by the peer while a request was outstanding. */
  earlyCloses: number;
  /** Answers that named another request (a duplicate or a mix-up). */
  wrongAnswers: number;
  /** Non-200 answers. */
  badStatus: number;
  /** Per connection: the pids that answered, in order of first appearance. */
  pidsPerConnection: number[][];
  /** Latencies in ms, for percentiles. */
  latencies: number[];
  /** Latency of each request with its completion time (performance.now()), for pause analysis. */
  timeline: [number, number][];
  errors: string[];
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** p-th percentile (0–100) of `values`. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Runs the load until `until` resolves or `durationMs` passes. */
export async function runLoad(opts: LoadOptions): Promise<LoadReport> {
  const report: LoadReport = {
    requests: 0,
    answered: 0,
    resets: 0,
    earlyCloses: 0,
    wrongAnswers: 0,
    badStatus: 0,
    pidsPerConnection: [],
    latencies: [],
    timeline: [],
    errors: [],
  };
  let isStopping = false;
  const stop = () => isStopping = true;
  opts.until?.then(stop, stop);
  const timer = opts.durationMs ? setTimeout(stop, opts.durationMs) : undefined;
  const path = opts.path ?? "/r?id={id}";
  let nextId = 0;
  async function client(index: number): Promise<void> {
    const pids: number[] = [];
    report.pidsPerConnection[index] = pids;
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({ port: opts.port, hostname: opts.hostname ?? "127.0.0.1" });
    } catch (err) {
      report.errors.push(`connect: ${(err as Error).message}`);
      return;
    }
    let buf = new Uint8Array(0);
    const chunk = new Uint8Array(16384);
    try {
      while (!isStopping) {
        const id = `${index}-${nextId++}`;
        const req = `GET ${path.replace("{id}", id)} HTTP/1.1\r\nHost: load\r\n\r\n`;
        const t0 = performance.now();
        report.requests++;
        await conn.write(enc.encode(req));
        let headEnd = -1;
        let need = -1;
        for (;;) {
          if (headEnd < 0) {
            headEnd = indexOfHeadEnd(buf);
            if (headEnd >= 0) need = headEnd + 4 + contentLength(buf.subarray(0, headEnd));
          }
          if (need >= 0 && buf.length >= need) break;
          const n = await conn.read(chunk);
          if (n === null) {
            report.earlyCloses++;
            report.errors.push(
              `connection ${index}: closed by the server with request ${id} outstanding`,
            );
            return;
          }
          const next = new Uint8Array(buf.length + n);
          next.set(buf);
          next.set(chunk.subarray(0, n), buf.length);
          buf = next;
        }
        const head = dec.decode(buf.subarray(0, headEnd));
        const body = dec.decode(buf.subarray(headEnd + 4, need));
        buf = buf.slice(need);
        const t1 = performance.now();
        report.latencies.push(t1 - t0);
        report.timeline.push([t1, t1 - t0]);
        if (!head.startsWith("HTTP/1.1 200")) {
          report.badStatus++;
          report.errors.push(`connection ${index}: ${head.split("\r\n")[0]}`);
          continue;
        }
        const [answerId, pid] = body.trim().split(" ");
        if (answerId !== id) {
          report.wrongAnswers++;
          report.errors.push(`connection ${index}: asked ${id}, got ${answerId}`);
          continue;
        }
        report.answered++;
        const p = Number(pid);
        if (pids[pids.length - 1] !== p) pids.push(p);
        if (opts.thinkMs) await new Promise((r) => setTimeout(r, opts.thinkMs));
      }
    } catch (err) {
      if (err instanceof Deno.errors.ConnectionReset || err instanceof Deno.errors.BrokenPipe) {
        report.resets++;
      }
      report.errors.push(`connection ${index}: ${(err as Error).name}: ${(err as Error).message}`);
    } finally {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  }
  await Promise.all(Array.from({ length: opts.connections }, (_, i) => client(i)));
  clearTimeout(timer);
  return report;
}

function indexOfHeadEnd(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}

function contentLength(head: Uint8Array): number {
  const m = /\r\ncontent-length:\s*(\d+)/i.exec(dec.decode(head));
  return m ? Number(m[1]) : 0;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      port: { type: "string" },
      connections: { type: "string", default: "50" },
      seconds: { type: "string", default: "5" },
      path: { type: "string" },
    },
  });
  const r = await runLoad({
    port: Number(values.port),
    connections: Number(values.connections),
    durationMs: Number(values.seconds) * 1000,
    path: values.path,
  });
  console.log(
    `${r.answered}/${r.requests} answered, resets ${r.resets}, early closes ${r.earlyCloses}, ` +
      `wrong ${r.wrongAnswers}, bad status ${r.badStatus}, p50 ${
        percentile(r.latencies, 50).toFixed(2)
      } ms, ` +
      `p99 ${percentile(r.latencies, 99).toFixed(2)} ms`,
  );
  for (const e of r.errors.slice(0, 10)) console.log(`  ${e}`);
}
