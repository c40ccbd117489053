/**
 * The child process of bundle_test.ts: plays the next apprun generation. Not a test file.
 *
 * `tcp <generation>`: reads the bundle at fd 3, decodes the state, cross-checks each fd's
 * addresses against its record, reads what the client sent while the connection sat in the
 * bundle, answers on the socket and closes it. Exits 0 when every connection answered.
 *
 * `inflight <count> [soft]`: run unprivileged; lowers its soft fd limit to `soft` (Deno raises
 * soft to hard at start-up), writes a bundle of `count` copies of one fd (ETOOMANYREFS once the
 * user's fds in flight pass the soft limit) and prints a JSON line: the soft limit before and
 * after, and the error reason if writing failed.
 */
import { readBundle, writeBundle } from "../../runtime/handoff/bundle.ts";
import { decodeState, loadStateDecoder } from "../../runtime/handoff/codec.ts";
import { HandoffBundleError } from "../../runtime/handoff/errors.ts";
import {
  closeFd,
  libc,
  pipe,
  rawLocalAddr,
  rawPeerAddr,
  readFd,
  RLIMIT_NOFILE,
  setNonBlocking,
  SHUT_WR,
  shutdown,
  writeAll,
} from "../../runtime/sys/mod.ts";

// The codec loads cbor-x on first need (runtime/handoff/codec.ts).
await loadStateDecoder();

const BUNDLE_FD = 3;

async function resumeTcp(generation: number): Promise<void> {
  const bundle = await readBundle(BUNDLE_FD, { expectedGeneration: generation });
  closeFd(BUNDLE_FD);
  if (bundle.stateError || !bundle.state) throw bundle.stateError ?? new Error("no state");
  const state = decodeState(bundle.state, { expectedGeneration: generation });
  if (state.connections.length !== bundle.fds.length) throw new Error("records ≠ fds");
  for (const [i, fd] of bundle.fds.entries()) {
    const record = state.connections[i];
    const local = String(rawLocalAddr(fd)), peer = String(rawPeerAddr(fd));
    if (local !== String(record.local) || peer !== String(record.peer)) {
      throw new Error(`fd ${i}: addresses ${local} ${peer} do not match its record`);
    }
    const pending = new Uint8Array(64);
    setNonBlocking(fd, true);
    const n = readFd(fd, pending);
    const heard = n === "again" ? "" : new TextDecoder().decode(pending.subarray(0, n));
    const carried = new TextDecoder().decode(record.buffered);
    const app = record.app as { greeting: string };
    setNonBlocking(fd, false);
    writeAll(fd, new TextEncoder().encode(`${app.greeting} from ${Deno.pid}: ${carried}+${heard}`));
    shutdown(fd, SHUT_WR);
    closeFd(fd);
  }
}

/** The soft RLIMIT_NOFILE; lowered first when `soft` is given (test-only use of raw libc). */
function softFdLimit(soft?: number): number {
  const limits = new BigUint64Array(2);
  const bytes = new Uint8Array(limits.buffer);
  libc.getrlimit(RLIMIT_NOFILE, bytes);
  if (soft !== undefined) {
    limits[0] = BigInt(soft);
    if (libc.setrlimit(RLIMIT_NOFILE, bytes) !== 0) throw new Error("setrlimit failed");
  }
  return Number(limits[0]);
}

function writeInFlight(count: number, soft?: number): void {
  const softBefore = softFdLimit(soft);
  const [readEnd, writeEnd] = pipe();
  let reason: string | null = null;
  try {
    const bundle = writeBundle({
      generation: 1,
      state: new Uint8Array(8),
      fds: Array(count).fill(readEnd),
    });
    closeFd(bundle);
  } catch (err) {
    if (!(err instanceof HandoffBundleError)) throw err;
    reason = err.reason;
    console.error(err.message);
  }
  const softAfter = softFdLimit();
  closeFd(readEnd);
  closeFd(writeEnd);
  console.log(JSON.stringify({ softBefore, softAfter, reason }));
}

const [mode, arg, soft] = Deno.args;
if (mode === "tcp") await resumeTcp(Number(arg));
else if (mode === "inflight") writeInFlight(Number(arg), soft ? Number(soft) : undefined);
else throw new Error(`unknown mode ${mode}`);
