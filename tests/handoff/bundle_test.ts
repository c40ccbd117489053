/**
 * Tests for runtime/handoff/bundle.ts over real sockets: live TCP connections carried to a real
 * child process, 10 000 fds in one bundle (timed), and every way a bundle can be cut short or
 * out of order, each checked for a clear error, no hang and no leaked fd.
 */
import assert from "node:assert/strict";
import { readBundle, writeBundle } from "../../runtime/handoff/bundle.ts";
import { decodeState, encodeState, loadStateCodec } from "../../runtime/handoff/codec.ts";
import { HandoffBundleError, type HandoffBundleReason } from "../../runtime/handoff/errors.ts";
import type { ConnectionRecord, HandoffState } from "../../runtime/handoff/state.ts";
import {
  accept,
  closeFd,
  createSealedMemfd,
  localAddr,
  openFds,
  openListener,
  pidfdOpen,
  pipe,
  raiseFdLimit,
  rawLocalAddr,
  rawPeerAddr,
  readFd,
  reapPidfd,
  receiveMessage,
  SCM_MAX_FD,
  sendMessage,
  SOCK_SEQPACKET,
  SOCK_STREAM,
  socketPair,
  spawnProcess,
  writeAll,
} from "../../runtime/sys/mod.ts";
import { DENO, ROOT, which } from "../_proc.ts";
import { waitUntil } from "../_poll.ts";

// The codec loads cbor-x on first need (runtime/handoff/codec.ts).
await loadStateCodec();
const CHILD = new URL("./bundle_child.ts", import.meta.url).pathname;

function makeState(connections: ConnectionRecord[], generation: number): HandoffState {
  return {
    apprunVersion: "test",
    generation,
    createdAt: Date.now(),
    pid: Deno.pid,
    connections,
    app: null,
  };
}

/** The wire header, spelled out here so the test pins the format (bundle.ts header). */
function headerBytes(
  { magic = "APRN", version = 1, generation = 1, fdCount = 0, stateLength = 0 } = {},
): Uint8Array {
  const bytes = new Uint8Array(24);
  const view = new DataView(bytes.buffer);
  bytes.set(new TextEncoder().encode(magic));
  view.setUint16(4, version);
  view.setBigUint64(8, BigInt(generation));
  view.setUint32(16, fdCount);
  view.setUint32(20, stateLength);
  return bytes;
}

function words(tag: string, ...values: number[]): Uint8Array {
  const bytes = new Uint8Array(4 + 4 * values.length);
  bytes.set(new TextEncoder().encode(tag));
  values.forEach((v, i) => new DataView(bytes.buffer).setUint32(4 + 4 * i, v));
  return bytes;
}

function send(fd: number, data: Uint8Array, fds: number[] = []): void {
  assert.equal(sendMessage({ fd, data, fds }), data.byteLength);
}

async function assertRefused(
  promise: Promise<unknown>,
  reason: HandoffBundleReason,
  pattern: RegExp,
): Promise<HandoffBundleError> {
  let caught: unknown;
  await promise.catch((err) => caught = err);
  assert.ok(caught instanceof HandoffBundleError, `expected a HandoffBundleError, got ${caught}`);
  assert.equal(caught.reason, reason, caught.message);
  assert.match(caught.message, pattern);
  return caught;
}

/** Accepts one connection on the non-blocking `listener`. */
function acceptOne(listener: number): Promise<number> {
  return waitUntil(
    () => {
      const fd = accept(listener);
      return typeof fd === "number" ? fd : null;
    },
    "a connection to accept",
    { everyMs: 1 },
  );
}

/** The child's exit status, once it exited. */
function waitExit(pidfd: number) {
  return waitUntil(() => reapPidfd(pidfd), "the child to exit", { timeoutMs: 30_000, everyMs: 5 });
}

async function readToEnd(conn: Deno.Conn): Promise<string> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(256);
  for (let n; (n = await conn.read(buf)) !== null;) chunks.push(buf.slice(0, n));
  return new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
}

Deno.test("writeBundle() carries live TCP connections to a child process that answers on them", async () => {
  const listener = openListener({
    addr: { transport: "tcp", family: "IPv4", hostname: "127.0.0.1", port: 0 },
  });
  const { port } = localAddr(listener) as { port: number };
  const clients: Deno.Conn[] = [];
  const accepted: number[] = [];
  for (let i = 0; i < 4; i++) {
    clients.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    accepted.push(await acceptOne(listener));
  }
  closeFd(listener);
  const records = accepted.map((fd, i): ConnectionRecord => ({
    kind: "http",
    buffered: new TextEncoder().encode(`GET /${i}`),
    local: rawLocalAddr(fd),
    peer: rawPeerAddr(fd),
    proto: null,
    app: { greeting: `hello ${i}` },
    listener: "main",
  }));
  const bundle = writeBundle({
    generation: 3,
    state: encodeState(makeState(records, 3)),
    fds: accepted,
  });
  // Our copies go; the bundle's keep every connection open (no FIN reaches the clients).
  for (const fd of accepted) closeFd(fd);
  // Bytes sent while the connections sit in the bundle wait in the kernel for the child.
  for (const [i, client] of clients.entries()) {
    await client.write(new TextEncoder().encode(`ping ${i}`));
  }

  const pid = spawnProcess({
    path: DENO,
    args: [DENO, "run", "-A", "--quiet", "--config", `${ROOT}/deno.json`, CHILD, "tcp", "3"],
    env: Deno.env.toObject(),
    passFds: [bundle],
  });
  closeFd(bundle);
  const pidfd = pidfdOpen(pid);
  try {
    for (const [i, client] of clients.entries()) {
      const text = await readToEnd(client);
      assert.match(text, new RegExp(`^hello ${i} from \\d+: GET /${i}\\+ping ${i}$`));
      assert.doesNotMatch(text, new RegExp(`from ${Deno.pid}:`));
    }
    assert.deepEqual(await waitExit(pidfd), { code: 0, signal: null });
  } finally {
    closeFd(pidfd);
    for (const client of clients) client.close();
  }
});

Deno.test("writeBundle() / readBundle() carry 10 000 fds in one bundle, in order", async () => {
  raiseFdLimit();
  const before = openFds();
  const pairs = Array.from({ length: 5000 }, () => socketPair(SOCK_STREAM));
  const fds = pairs.flat();
  const records = fds.map((): ConnectionRecord => ({
    kind: "http",
    buffered: new Uint8Array(0),
    local: new Uint8Array([1, 0]),
    peer: null,
    proto: null,
    app: { session: "x".repeat(16) },
    listener: "main",
  }));
  let t = performance.now();
  const state = encodeState(makeState(records, 9));
  const encodeMs = performance.now() - t;

  t = performance.now();
  const bundle = writeBundle({ generation: 9, state, fds });
  const writeMs = performance.now() - t;
  for (const fd of fds) closeFd(fd);

  t = performance.now();
  const contents = await readBundle(bundle, { expectedGeneration: 9 });
  const readMs = performance.now() - t;
  closeFd(bundle);
  t = performance.now();
  const decoded = decodeState(contents.state!, { expectedGeneration: 9 });
  const decodeMs = performance.now() - t;

  assert.equal(contents.stateError, null);
  assert.deepEqual(contents.header, {
    version: 1,
    generation: 9,
    fdCount: 10_000,
    stateLength: state.byteLength,
  });
  assert.equal(contents.fds.length, 10_000);
  assert.equal(decoded.connections.length, 10_000);
  // Order kept: fd 2k and 2k+1 are still the two ends of pair k.
  const buf = new Uint8Array(4);
  for (let k = 0; k < 5000; k++) {
    writeAll(contents.fds[2 * k], new Uint8Array([k & 0xff, k >> 8]));
    assert.equal(readFd(contents.fds[2 * k + 1], buf), 2);
    assert.equal(buf[0] | (buf[1] << 8), k);
  }
  for (const fd of contents.fds) closeFd(fd);
  assert.deepEqual(openFds(), before);
  const f = (ms: number) => `${ms.toFixed(1)} ms`;
  console.log(
    `10 000 fds: encode state ${f(encodeMs)} (${state.byteLength} bytes), writeBundle ${
      f(writeMs)
    }, readBundle ${f(readMs)}, decode state ${f(decodeMs)}`,
  );
});

Deno.test("writeBundle() grows a small send buffer instead of blocking", async () => {
  const before = openFds();
  const [source, sink] = pipe();
  const fds = Array<number>(3000).fill(source);
  const bundle = writeBundle({
    generation: 1,
    state: new Uint8Array(0),
    fds,
    sendBufferBytes: 4096,
  });
  const contents = await readBundle(bundle);
  assert.equal(contents.fds.length, 3000);
  assert.deepEqual(contents.state, new Uint8Array(0));
  for (const fd of [...contents.fds, bundle, source, sink]) closeFd(fd);
  assert.deepEqual(openFds(), before);
});

Deno.test("readBundle() refuses a bundle cut after its header: clear error, no hang, no leak", async () => {
  const before = openFds();
  const [reader, writer] = socketPair(SOCK_SEQPACKET);
  send(writer, headerBytes({ fdCount: 600, stateLength: 10 }));
  closeFd(writer);
  const started = performance.now();
  await assertRefused(readBundle(reader), "truncated", /ended before the state message/);
  assert.ok(performance.now() - started < 200, "refused without waiting");
  closeFd(reader);
  assert.deepEqual(openFds(), before);
});

Deno.test("readBundle() refuses a bundle cut between fd batches and closes what it received", async () => {
  const before = openFds();
  const [reader, writer] = socketPair(SOCK_SEQPACKET);
  const [source, sink] = pipe();
  const memfd = createSealedMemfd("test", new Uint8Array(10));
  send(writer, headerBytes({ fdCount: 600, stateLength: 10 }));
  send(writer, words("APRM", 10), [memfd]);
  send(writer, words("APRF", 0, SCM_MAX_FD), Array(SCM_MAX_FD).fill(source));
  for (const fd of [writer, memfd, source, sink]) closeFd(fd);
  await assertRefused(readBundle(reader), "truncated", /ended before fd 253 of 600/);
  closeFd(reader);
  assert.deepEqual(openFds(), before);
});

Deno.test("readBundle() gives up on a silent writer after timeoutMs", async () => {
  const [reader, writer] = socketPair(SOCK_SEQPACKET);
  send(writer, headerBytes({ fdCount: 1 }));
  const started = performance.now();
  await assertRefused(readBundle(reader, { timeoutMs: 150 }), "timeout", /within 150 ms/);
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 150 && elapsed < 1000, `gave up after ${elapsed} ms`);
  closeFd(reader);
  closeFd(writer);
});

Deno.test("readBundle() refuses a bad magic, version, generation or fd count without consuming it", async () => {
  const cases: [Uint8Array, HandoffBundleReason, RegExp, number?][] = [
    [headerBytes({ magic: "XPRN" }), "magic", /does not start with "APRN"/],
    [headerBytes({ version: 2 }), "version", /format version 2, this apprun reads version 1/],
    [headerBytes({ generation: 5 }), "generation", /generation 5, expected 6/, 6],
    [headerBytes({ fdCount: 30_000 }), "fd-limit", /30000 fds announced, room for \d+/],
  ];
  for (const [header, reason, pattern, expectedGeneration] of cases) {
    const [reader, writer] = socketPair(SOCK_SEQPACKET);
    send(writer, header);
    closeFd(writer);
    const err = await assertRefused(readBundle(reader, { expectedGeneration }), reason, pattern);
    assert.equal(err.isBundleIntact, true);
    const still = receiveMessage({ fd: reader, maxBytes: 64 });
    assert.deepEqual(still !== "again" && still.data, header, "the header is still there");
    closeFd(reader);
  }
  // A real bundle refused for its generation is still whole for the right reader.
  const bundle = writeBundle({ generation: 5, state: new Uint8Array([1]), fds: [] });
  await assertRefused(readBundle(bundle, { expectedGeneration: 6 }), "generation", /expected 6/);
  assert.deepEqual(
    (await readBundle(bundle, { expectedGeneration: 5 })).state,
    new Uint8Array([1]),
  );
  closeFd(bundle);
});

Deno.test("readBundle() reports an unsealed state but still returns the connection fds", async () => {
  const before = openFds();
  const [reader, writer] = socketPair(SOCK_SEQPACKET);
  const [source, sink] = pipe();
  send(writer, headerBytes({ fdCount: 2, stateLength: 4 }));
  send(writer, words("APRM", 4), [source]); // a pipe: no seals, could change under the reader
  send(writer, words("APRF", 0, 2), [sink, sink]);
  closeFd(writer);
  const contents = await readBundle(reader);
  assert.equal(contents.state, null);
  assert.equal(contents.stateError?.reason, "seal");
  assert.match(contents.stateError!.message, /seals 0x0, not 0xf/);
  assert.equal(contents.fds.length, 2);
  for (const fd of [...contents.fds, reader, source, sink]) closeFd(fd);
  assert.deepEqual(openFds(), before);
});

Deno.test("readBundle() refuses batches whose counts do not add up, leaking nothing", async () => {
  const before = openFds();
  const [source, sink] = pipe();
  const memfd = createSealedMemfd("test", new Uint8Array(0));
  const cases: [Uint8Array, number, Uint8Array?][] = [
    [words("APRF", 0, 3), 2], // says 3, carries 2
    [words("APRF", 1, 3), 3], // wrong batch index
    [words("APRF", 0, 3), 3, words("APRF", 1, 1)], // one message too many
  ];
  for (const [batch, carried, extra] of cases) {
    const [reader, writer] = socketPair(SOCK_SEQPACKET);
    send(writer, headerBytes({ fdCount: 3 }));
    send(writer, words("APRM", 0), [memfd]);
    send(writer, batch, Array(carried).fill(source));
    if (extra) send(writer, extra, [source]);
    closeFd(writer);
    await assertRefused(readBundle(reader), "sequence", /out of order/);
    closeFd(reader);
  }
  for (const fd of [source, sink, memfd]) closeFd(fd);
  assert.deepEqual(openFds(), before);
});

Deno.test("readBundle() refuses an fd that is not a bundle socket", async () => {
  const [source, sink] = pipe();
  await assertRefused(readBundle(source), "socket", /not a unix SOCK_SEQPACKET socket/);
  closeFd(source);
  closeFd(sink);
});

Deno.test("writeBundle() refuses bad arguments and closes everything when sendmsg fails", () => {
  const before = openFds();
  for (
    const options of [
      { generation: -1, state: new Uint8Array(0), fds: [] },
      { generation: 1, state: new Uint8Array(0), fds: [1.5] },
    ]
  ) {
    assert.throws(() => writeBundle(options), (err: unknown) => {
      assert.ok(err instanceof HandoffBundleError);
      assert.equal(err.reason, "argument");
      assert.equal(err.code, "ERR_HANDOFF_STORE");
      return true;
    });
  }
  const [other, sink] = pipe();
  const closedFd = 19_000; // below the fd limit, never opened here
  assert.ok(!openFds().includes(closedFd));
  assert.throws(
    () => writeBundle({ generation: 1, state: new Uint8Array(4), fds: [other, closedFd] }),
    (err: unknown) => {
      assert.ok(err instanceof HandoffBundleError);
      assert.equal(err.reason, "write");
      assert.match(err.message, /fd batch 0: sendmsg failed: EBADF/);
      return true;
    },
  );
  closeFd(other);
  closeFd(sink);
  assert.deepEqual(openFds(), before);
});

Deno.test({
  name: "writeBundle() raises the soft fd limit on ETOOMANYREFS (unprivileged sender)",
  // setpriv: util-linux, on every Linux machine.
  ignore: Deno.uid() !== 0 || !which("setpriv"),
  async fn() {
    const denoDir = await Deno.makeTempDir();
    await Deno.chmod(denoDir, 0o777);
    // As nobody (root is exempt from the in-flight limit): 1000 fds sent in batches of 253.
    const run = async (hardLimit: number, softLimit?: number) => {
      const script = `ulimit -n ${hardLimit} && exec "$@"`;
      const child = [DENO, "run", "-A", "--quiet", "--config", `${ROOT}/deno.json`, CHILD];
      const output = await new Deno.Command("setpriv", {
        args: [
          ...["--reuid=65534", "--regid=65534", "--clear-groups", "--", "/bin/sh", "-c", script],
          ...["sh", ...child, "inflight", "1000", ...(softLimit ? [String(softLimit)] : [])],
        ],
        env: { DENO_DIR: denoDir, HOME: denoDir, PATH: "/usr/bin:/bin" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
      return JSON.parse(new TextDecoder().decode(output.stdout));
    };
    try {
      // Soft 600 under hard 4096: 759 in flight trip ETOOMANYREFS, the raise lets it through.
      assert.deepEqual(await run(4096, 600), { softBefore: 600, softAfter: 4096, reason: null });
      // Hard 600: nothing to raise, one clear error.
      assert.deepEqual(await run(600), { softBefore: 600, softAfter: 600, reason: "fd-limit" });
    } finally {
      await Deno.remove(denoDir, { recursive: true });
    }
  },
});
