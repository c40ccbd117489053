/**
 * @module
 * The steps every session takes at a handoff (docs/design.md, "What gets handed off"), in one
 * place: stop reading (what arrives now waits in the kernel for the next process), wait until
 * what the app queued is written or the deadline passes, ask the app's hook for its state and
 * check it is plain data, build the record, and give up the fd. A session that cannot be carried
 * (writes not flushed in time, a hook that throws or returns something that is not plain data)
 * is closed politely by its own `giveUp` and the handoff goes on without it.
 */
import type { Socket } from "../io/mod.ts";
import { checkPlainData, type ConnectionKind, type ConnectionRecord } from "../handoff/mod.ts";
import { rawLocalAddr, rawPeerAddr } from "../sys/mod.ts";
import { describeError } from "../errors.ts";
import type { CarriedSession, DetachedSession, SessionEnv } from "./session.ts";

/** What {@linkcode carrySession} needs from one session. */
export interface CarryPlan {
  readonly kind: Exclude<ConnectionKind, "http">;
  readonly session: CarriedSession;
  readonly socket: Socket;
  readonly env: SessionEnv;
  /** Whether the session is still open: it may end while we wait. */
  isOpen(): boolean;
  /** Resolves when what the app queued outside the socket is in it (WebSocket Blob sends). */
  flushed(): Promise<void>;
  /** Calls the app's handoff hook for this session (null without one). */
  appState(): unknown;
  /** What the protocol needs to continue (parser snapshot, last event id). */
  proto(): unknown;
  /** Bytes read from the socket but not consumed. */
  buffered(): Uint8Array;
  readonly listener: string | null;
  /** Not carried: close politely (WebSocket 1012, SSE stream ended). */
  giveUp(reason: string): void;
  /** The session's state machine moves to "detached"; the socket is detached afterwards. */
  markDetached(): void;
}

/** Carries one session, or gives it up; see the module comment. The caller owns the fd. */
export async function carrySession(
  plan: CarryPlan,
  deadline: number,
): Promise<DetachedSession | null> {
  const { socket, env } = plan;
  if (!plan.isOpen()) return null;
  socket.pauseReading();
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    plan.flushed().then(() => socket.drained()),
    new Promise<void>((r) => timer = setTimeout(r, Math.max(0, deadline - performance.now()))),
  ]);
  clearTimeout(timer);
  if (!plan.isOpen()) return null;
  let app: unknown;
  try {
    if (socket.bufferedAmount > 0) throw new Error("writes not flushed by the drain deadline");
    app = checkPlainData(plan.appState() ?? null, "state");
  } catch (err) {
    plan.giveUp(describeError(err));
    return null;
  }
  const fd = socket.fd;
  const record: ConnectionRecord = {
    kind: plan.kind,
    buffered: plan.buffered(),
    local: rawLocalAddr(fd),
    peer: rawPeerAddr(fd),
    proto: plan.proto(),
    app,
    listener: plan.listener,
  };
  plan.markDetached();
  socket.detach();
  env.untrack(plan.session);
  return { fd, record };
}
