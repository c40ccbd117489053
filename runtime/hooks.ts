/**
 * @module
 * The app's session hooks: what each WebSocket and SSE stream (and the app as a whole) carries
 * to the next process, and how it is picked up there. They are named exports of the handler
 * module, or members of its default export; `findHooks` collects them. Each session kind
 * declares the hooks it calls (ws/, sse/); this is their union, as the app writes them.
 */
import type { WsHooks } from "./ws/mod.ts";
import type { SseHooks } from "./sse/mod.ts";

/** Process-wide hooks. */
export interface AppHooks {
  /** Process-wide state at handoff (called after the sessions'). */
  onAppHandoff?(): unknown;
  /** Process-wide state in the new process (called before the sessions'). */
  onAppResume?(state: unknown): void;
}

/** Every hook an app may offer; see the README's "Sessions" and the project's mod.ts. */
export interface SessionHooks extends WsHooks, SseHooks, AppHooks {}

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
