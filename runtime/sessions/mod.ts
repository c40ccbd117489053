/**
 * @module
 * The contract between the server and its long-lived sessions (WebSocket, SSE): what a session
 * is to the server, which responses start one, the handoff steps they share, and the replay of
 * a session's opening request in the next process when the app has no resume hook. The
 * protocols themselves live in `ws/` and `sse/`. Other areas import only from here.
 */
export type { CarriedSession, DetachedSession, SessionEnv, SessionMeta } from "./session.ts";
export { claimSession, registerSession, type SessionStarter } from "./registry.ts";
export { type CarryPlan, carrySession } from "./carry.ts";
export {
  checkRequestRecord,
  isResumed,
  othersReplayed,
  recordHead,
  recordRequest,
  type Replay,
  type ReplayOutcome,
  replayRequest,
  type ReplayTicket,
  replayTicketOf,
  type RequestRecord,
  RESUMED_HEADER,
} from "./replay.ts";
export { PendingReplay } from "./pending.ts";
export {
  CLOSE_TIMEOUT_MS,
  closeWhenDrained,
  drainedWithin,
  isWriteStalled,
  MAX_BUFFERED_BYTES,
  READ_PAUSE_BYTES,
} from "./output.ts";
