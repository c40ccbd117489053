/**
 * @module
 * Long-lived sessions that take a connection over after their response head (WebSocket after
 * `101`, an SSE stream after its `200`), and the app's hooks that carry their state across a
 * handoff. A response marked with {@linkcode registerTakeover} is not written as a body: the
 * exchange writes its head and hands the socket to the takeover, which owns it from then on.
 * The server tracks the sessions (`SessionEnv.track`) so a handoff can carry or close them.
 */
import type { Socket } from "./io/socket.ts";
import type { EventLoop } from "./io/loop.ts";
import type { Logger } from "./log.ts";
import type { ConnectionRecord } from "./handoff/state.ts";
import type { RequestHead } from "./http/parser.ts";

/** The app's handoff hooks: named exports of the handler module, or members of its default export. */
export interface SessionHooks {
  /** Per WebSocket at handoff: a CBOR-able value carried to the next process. */
  onWebSocketHandoff?(socket: unknown): unknown;
  /** Per WebSocket in the new process: re-attach listeners, restore state. */
  onWebSocketResume?(socket: unknown, state: unknown, meta: SessionMeta): void;
  /** Per SSE stream at handoff. */
  onSSEHandoff?(stream: unknown): unknown;
  /** Per SSE stream in the new process: start sending events again. */
  onSSEResume?(stream: unknown, state: unknown, meta: SessionMeta): void;
  /** Process-wide state at handoff (called after the sessions'). */
  onAppHandoff?(): unknown;
  /** Process-wide state in the new process (called before the sessions'). */
  onAppResume?(state: unknown): void;
}

/** What a resumed session knows about where it came from. */
export interface SessionMeta {
  /** The URL of the request that opened it. */
  url: string;
  /** WebSocket subprotocol, or "". */
  protocol: string;
  /** SSE: the id of the last event sent before the handoff, or "". */
  lastEventId: string;
  /** The generation that opened it. */
  generation: number;
}

const HOOK_NAMES = [
  "onWebSocketHandoff",
  "onWebSocketResume",
  "onSSEHandoff",
  "onSSEResume",
  "onAppHandoff",
  "onAppResume",
] as const;

/** Collects the hooks a handler module offers (named exports win over default-export members). */
export function findHooks(
  namespace: Record<string, unknown>,
  defaultExport: Record<string, unknown>,
): SessionHooks {
  const hooks: Record<string, unknown> = {};
  for (const name of HOOK_NAMES) {
    const fn = namespace[name] ?? defaultExport[name];
    if (typeof fn === "function") {
      hooks[name] = namespace[name] === fn
        ? fn
        : (fn as (...a: unknown[]) => unknown).bind(defaultExport);
    }
  }
  return hooks as SessionHooks;
}

/** A session the server can carry through a handoff. */
export interface CarriedSession {
  readonly kind: "ws" | "sse";
  /**
   * Stops the session at a clean boundary (outbound data flushed, nothing more read), asks the
   * app for its state and gives up the fd. Returns null when it could not be carried: then it
   * has closed itself politely (WebSocket 1012, SSE stream ended).
   */
  handOff(deadline: number): Promise<{ fd: number; record: ConnectionRecord } | null>;
  /** Graceful stop without handoff: WebSocket close 1001, SSE stream ended. */
  closeForShutdown(): void;
}

/** What the server gives a session. */
export interface SessionEnv {
  readonly loop: EventLoop;
  /** The shared read buffer and its length as a bigint (the fast FFI path). */
  readonly readBuf: Uint8Array;
  readonly readLen: bigint;
  readonly log: Logger;
  readonly hooks: SessionHooks;
  readonly generation: number;
  track(session: CarriedSession): void;
  untrack(session: CarriedSession): void;
  /** Serves `fd` as an HTTP connection again (an SSE stream ended on a keep-alive connection). */
  adoptHttp(fd: number, buffered: Uint8Array): void;
}

/** A protocol taking the connection over after its head. */
export interface Takeover {
  readonly kind: "ws" | "sse";
  /**
   * The head to write, given the request: a WebSocket's `101`, or null to have the exchange
   * write the Response's own head with a streaming framing (SSE).
   */
  head(request: RequestHead): string | null;
  /** The session now owns `socket`; `leftover` are bytes read after the request. */
  attach(socket: Socket, leftover: Uint8Array, env: SessionEnv, framing: "chunked" | "close"): void;
  /** The exchange could not hand the connection over (client gone): release resources. */
  abandon(): void;
}

const TAKEOVERS = new WeakMap<Response, Takeover>();

/** Marks `response` as the start of a session (`upgradeWebSocket`, `sse`). */
export function registerTakeover(response: Response, takeover: Takeover): void {
  TAKEOVERS.set(response, takeover);
}

/** The takeover behind `response`, removed from the registry (a response is used once). */
export function claimTakeover(response: Response): Takeover | undefined {
  const t = TAKEOVERS.get(response);
  if (t !== undefined) TAKEOVERS.delete(response);
  return t;
}

const REQUEST_HEADS = new WeakMap<Request, RequestHead>();

/** Remembers the parsed head behind an upgrade request (the HTTP version is not on Request). */
export function rememberRequestHead(request: Request, head: RequestHead): void {
  REQUEST_HEADS.set(request, head);
}

/** The head behind `request`, when apprun parsed it. */
export function requestHeadOf(request: Request): RequestHead | undefined {
  return REQUEST_HEADS.get(request);
}
