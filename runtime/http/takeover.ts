/**
 * @module
 * The takeover contract: how a response that starts a long-lived protocol (a WebSocket after
 * `101`, an SSE stream after its `200`) gets the connection. The engine knows only this shape —
 * a head to write, then the socket and the bytes read after the request, handed over once — and
 * asks its host (the server) which takeover a response carries. What a session is, and what it
 * needs from the server, is not the engine's business (docs/design.md, "Areas").
 *
 * It also remembers the parsed head behind each Request the engine builds, for protocols that
 * need what a `Request` does not carry (the HTTP version, for a WebSocket handshake).
 */
import type { Socket } from "../io/mod.ts";
import type { RequestHead } from "./parser.ts";

/** How the bytes after a takeover's head are delimited: chunks (HTTP/1.1) or the close. */
export type TakeoverFraming = "chunked" | "close";

/** A protocol taking the connection over after its response head. */
export interface Takeover {
  /**
   * The head to write, given the request: a WebSocket's `101`, or null to have the exchange
   * write the Response's own head with a streaming framing (SSE).
   */
  head(request: RequestHead): string | null;
  /** The protocol now owns `socket`; `leftover` are bytes read after the request. */
  attach(socket: Socket, leftover: Uint8Array, framing: TakeoverFraming): void;
  /** The exchange could not hand the connection over (client gone): release resources. */
  abandon(): void;
}

/**
 * A streaming `text/event-stream` response the engine offers its host: the host may carry it as
 * a session (so a handoff can continue it) instead of the engine streaming it as a body.
 */
export interface EventStreamOffer {
  /** The request it answers. */
  readonly request: Request;
  /** Aborts `request.signal`: the session calls it when the client goes away. */
  abortRequest(reason: unknown): void;
}

/** Whether a Content-Type names `text/event-stream` (RFC 9110 §8.3.1: case-insensitive). */
export function isEventStream(contentType: string | null): boolean {
  if (contentType === null) return false;
  const type = contentType.split(";", 1)[0].trim().toLowerCase();
  return type === "text/event-stream";
}

const REQUEST_HEADS = new WeakMap<Request, RequestHead>();

/** Remembers the parsed head behind `request` (only upgrade requests are remembered). */
export function rememberRequestHead(request: Request, head: RequestHead): void {
  REQUEST_HEADS.set(request, head);
}

/** The head behind `request`, when apprun's engine parsed it and it asked for an upgrade. */
export function requestHeadOf(request: Request): RequestHead | undefined {
  return REQUEST_HEADS.get(request);
}
