/**
 * @module
 * Replaying the request that opened a session (docs/design.md, "Sessions without hooks"): a
 * session records the head of its request (method, URL, headers) when it starts; in the next
 * process, when the app has no resume hook for it, that request is run again through the
 * handler of the session's listener, marked with `apprun-resumed: 1` (and, for SSE, the
 * `Last-Event-ID` to go on from). The protocol's own entry point (`upgradeWebSocket`, `sse`, a
 * `text/event-stream` body) sees the mark and binds the carried connection instead of starting
 * a new one, so the app attaches its listeners exactly as for a new client. This module owns
 * the recorded form, the mark, and running the handler (with a deadline); pending.ts holds the
 * connection meanwhile. The protocols decide what a good answer is.
 */
import type { FetchHandler, RemoteAddr, ServeHandlerInfo } from "../http/mod.ts";
import { peerAddr, type SockAddr } from "../sys/mod.ts";
import { describeError } from "../errors.ts";
import type { SessionEnv } from "./session.ts";

/** The request header that marks a replayed request (visible to apps that import nothing). */
export const RESUMED_HEADER = "apprun-resumed";

/** How long the handler may take to answer a replayed request before the session is closed. */
export const REPLAY_TIMEOUT_MS = 10_000;

/** How long a session given back waits for the others before it reads (see `othersReplayed`). */
const GATE_MAX_MS = 1000;

/** The head of a session's opening request, as carried: field lines as `name: value\r\n`. */
export interface RequestRecord {
  method: string;
  url: string;
  headers: string;
}

/** Longest recorded URL and header block (what the engine's head limits let through, with room). */
const MAX_URL = 64 * 1024;
const MAX_HEADERS = 1024 * 1024;

/** Records `request`'s head; the replay mark is left out (it is added again at each replay). */
export function recordRequest(request: Request): RequestRecord {
  return recordHead(request.method, request.url, request.headers);
}

/** Records a head given by parts (an engine's parsed head). */
export function recordHead(
  method: string,
  url: string,
  headers: Iterable<[string, string]>,
): RequestRecord {
  let lines = "";
  for (const [name, value] of headers) {
    if (name.toLowerCase() !== RESUMED_HEADER) lines += `${name}: ${value}\r\n`;
  }
  return { method, url, headers: lines };
}

/** Checks a record read from a handoff state; null when absent. Throws TypeError when malformed. */
export function checkRequestRecord(value: unknown): RequestRecord | null {
  if (value === null || value === undefined) return null;
  const o = value as Record<string, unknown>;
  if (
    typeof o !== "object" || typeof o.method !== "string" || o.method.length > 64 ||
    typeof o.url !== "string" || o.url.length > MAX_URL ||
    typeof o.headers !== "string" || o.headers.length > MAX_HEADERS
  ) {
    throw new TypeError("recorded request has an unknown shape");
  }
  return { method: o.method, url: o.url, headers: o.headers };
}

/** A replayed request's link to the connection it stands for; the protocol claims it once. */
export interface ReplayTicket {
  readonly kind: "ws" | "sse";
  /** The carried side the protocol hands the app (a WebSocket: its socket and response). */
  claim(): unknown;
  readonly isClaimed: boolean;
}

const TICKETS = new WeakMap<Request, ReplayTicket>();

/** The ticket behind a replayed `request`, or undefined for a request from a client. */
export function replayTicketOf(request: Request): ReplayTicket | undefined {
  return TICKETS.get(request);
}

/**
 * Whether `request` is a replay of a session's opening request, made by apprun after a
 * restart — unlike the `apprun-resumed` header, which any client can send, this cannot be
 * forged.
 */
export function isResumed(request: Request): boolean {
  return TICKETS.has(request);
}

/** What a replay gave: the handler's response, or why there is none. */
export type ReplayOutcome =
  | { ok: true; response: Response }
  | { ok: false; reason: string };

/** Options for {@linkcode replayRequest}. */
export interface ReplayOptions {
  env: SessionEnv;
  record: RequestRecord;
  listener: string | null;
  /** The carried connection (for `info.remoteAddr`). */
  fd: number;
  /** Headers set (a string) or removed (null) on the replayed request, besides the mark. */
  set?: Record<string, string | null>;
  kind: ReplayTicket["kind"];
  /** What the protocol's entry point returns when it sees the replayed request. */
  carried?: () => unknown;
}

/** A replay under way. */
export interface Replay {
  readonly request: Request;
  /** Settles once the handler answered, failed, or ran out of time; never rejects. */
  readonly outcome: Promise<ReplayOutcome>;
  readonly ticket: ReplayTicket;
  /** Aborts the replayed request's signal (the session ended). */
  abort(reason: unknown): void;
  /** The session is back in the app's hands, or failed: settles `info.completed`. Once. */
  complete(): void;
}

let unsettled = 0;
let gateWaiters: (() => void)[] = [];

/**
 * Resolves once every replay under way has completed (or after a bounded wait): sessions
 * resumed together are all given back to the app before any of them reads what its client sent
 * during the handoff, so a message broadcast then reaches every socket the app's registry will
 * hold again (a chat's `clients` set, filled in `open`). A slow replay holds the others at most
 * GATE_MAX_MS.
 */
export function othersReplayed(): Promise<void> {
  if (unsettled === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, GATE_MAX_MS);
    gateWaiters.push(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function leaveGate(): void {
  if (--unsettled > 0) return;
  const waiters = gateWaiters;
  gateWaiters = [];
  for (const wake of waiters) wake();
}

/** Runs the handler of `listener` on the recorded request; see the module comment. */
export function replayRequest(opts: ReplayOptions): Replay {
  const headers = parseHeaderBlock(opts.record.headers);
  for (const [name, value] of Object.entries(opts.set ?? {})) {
    if (value === null) headers.delete(name);
    else headers.set(name, value);
  }
  headers.set(RESUMED_HEADER, "1");
  const abort = new AbortController();
  const request = new Request(opts.record.url, {
    method: opts.record.method,
    headers,
    signal: abort.signal,
  });
  let isClaimed = false;
  const ticket: ReplayTicket = {
    kind: opts.kind,
    get isClaimed() {
      return isClaimed;
    },
    claim() {
      if (isClaimed) throw new TypeError("this request was already upgraded");
      isClaimed = true;
      return opts.carried?.();
    },
  };
  TICKETS.set(request, ticket);
  const completed = Promise.withResolvers<void>();
  const info = new ReplayInfo(opts.fd, opts.listener ?? "", completed.promise);
  unsettled++;
  let isComplete = false;
  const outcome = runWithDeadline(opts.env.handlerFor(opts.listener), request, info);
  return {
    request,
    outcome,
    ticket,
    abort: (reason) => abort.abort(reason),
    complete() {
      if (isComplete) return;
      isComplete = true;
      completed.resolve();
      leaveGate();
    },
  };
}

async function runWithDeadline(
  handler: FetchHandler,
  request: Request,
  info: ServeHandlerInfo,
): Promise<ReplayOutcome> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<ReplayOutcome>((resolve) => {
    timer = setTimeout(
      () => resolve({ ok: false, reason: `no response within ${REPLAY_TIMEOUT_MS} ms` }),
      REPLAY_TIMEOUT_MS,
    );
  });
  const answer = (async (): Promise<ReplayOutcome> => {
    try {
      const response = await handler(request, info);
      if (response instanceof Response) return { ok: true, response };
      return { ok: false, reason: `the handler returned ${typeof response}, not a Response` };
    } catch (err) {
      return { ok: false, reason: `the handler threw: ${describeError(err)}` };
    }
  })();
  try {
    return await Promise.race([answer, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Parses `name: value\r\n` lines back into Headers (skipping any line Headers refuses). */
function parseHeaderBlock(block: string): Headers {
  const headers = new Headers();
  for (const line of block.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    try {
      headers.append(line.slice(0, colon), line.slice(colon + 1).trim());
    } catch {
      // A field Headers will not hold (it came through the engine, so this does not happen).
    }
  }
  return headers;
}

class ReplayInfo implements ServeHandlerInfo {
  readonly #fd: number;
  readonly listener: string;
  readonly completed: Promise<void>;
  #remoteAddr: RemoteAddr | null = null;

  constructor(fd: number, listener: string, completed: Promise<void>) {
    this.#fd = fd;
    this.listener = listener;
    this.completed = completed;
  }

  get remoteAddr(): RemoteAddr {
    this.#remoteAddr ??= peerOf(this.#fd);
    return this.#remoteAddr;
  }
}

/** The peer of `fd` as a handler sees it (an empty unix address once the peer is gone). */
function peerOf(fd: number): RemoteAddr {
  let addr: SockAddr | null = null;
  try {
    addr = peerAddr(fd);
  } catch {
    // The peer is gone already.
  }
  if (addr?.transport === "tcp") {
    return { transport: "tcp", hostname: addr.hostname, port: addr.port };
  }
  return { transport: "unix", path: addr?.path ?? "" };
}
