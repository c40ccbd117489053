/**
 * @module
 * `upgradeWebSocket(req)`: the app-facing entry point, shaped like `Deno.upgradeWebSocket`
 * (which apprun's worker replaces with it). Validates the opening handshake (RFC 6455 §4.2.1)
 * with Deno's errors for what Deno refuses, returns the app's socket and a `101` response that
 * the engine recognises and answers by handing the connection to a `WsSession`. For a replayed
 * request (sessions/replay.ts) it returns the carried socket instead: no handshake happens, the
 * connection is already open. permessage-deflate is never negotiated: its compression context
 * would have to cross the handoff, and RFC 6455 §9.1 lets a server accept no extension.
 */
import {
  recordRequest,
  registerSession,
  replayTicketOf,
  type SessionEnv,
} from "../sessions/mod.ts";
import { requestHeadOf } from "../http/mod.ts";
import { type HandshakeRejected, validateHandshake } from "./handshake.ts";
import { FrameParser } from "./parser.ts";
import { type WsHooks, WsSession } from "./session.ts";
import { ServerWebSocket } from "./socket.ts";

/** Options for {@linkcode upgradeWebSocket}. */
export interface UpgradeWebSocketOptions {
  /** The subprotocol to accept, if the client offered it (as `Deno.upgradeWebSocket`). */
  protocol?: string;
  /** Largest message accepted (default 16 MiB); bigger ones close the connection with 1009. */
  maxMessageSize?: number;
  /**
   * Most bytes that may wait for a client that does not read when the app sends more (default
   * 16 MiB): past it the connection is closed and the socket gets `error`, then `close` 1006.
   */
  maxBufferedAmount?: number;
}

/** What {@linkcode upgradeWebSocket} returns. */
export interface WebSocketUpgrade {
  socket: ServerWebSocket;
  /** Return this from the handler. Its status reads 101. */
  response: Response;
}

/**
 * What {@linkcode upgradeWebSocket} throws for a request that is not a valid upgrade: a
 * `TypeError`, as `Deno.upgradeWebSocket` throws, that also carries the answer RFC 6455 §4.2.1
 * asks for — 400, or 426 naming the version we speak (§4.4) — so the app can return it.
 */
export class WebSocketUpgradeError extends TypeError {
  /** "TypeError", as Deno names what it throws: logged, it reads the same. */
  override name = "TypeError";
  readonly status: 400 | 426;
  readonly #headers: [string, string][];

  constructor(rejected: HandshakeRejected) {
    super(rejected.message);
    this.status = rejected.status;
    this.#headers = rejected.headers;
  }

  /** A new response to return from the handler: the status, its headers, the message. */
  get response(): Response {
    return new Response(`${this.message}\n`, { status: this.status, headers: this.#headers });
  }
}

/**
 * Accepts a WebSocket upgrade. Throws {@linkcode WebSocketUpgradeError} (a `TypeError`, as Deno
 * throws, with Deno's message for what Deno refuses) when `req` is not a valid upgrade request,
 * or when `options.protocol` is not among those the client offered; return its `response` (400
 * or 426). For a request apprun replays after a restart, returns the carried, open socket.
 */
export function upgradeWebSocket(
  req: Request,
  options: UpgradeWebSocketOptions = {},
): WebSocketUpgrade {
  const ticket = replayTicketOf(req);
  if (ticket?.kind === "ws") return ticket.claim() as WebSocketUpgrade;
  const head = requestHeadOf(req);
  const result = validateHandshake({
    method: req.method,
    httpVersion: head?.minor === 0 ? "HTTP/1.0" : "HTTP/1.1",
    headers: req.headers,
    protocols: options.protocol ? [options.protocol] : [],
  });
  if (!result.ok) throw new WebSocketUpgradeError(result);
  if (options.protocol && result.protocol === null) {
    throw new WebSocketUpgradeError({
      ok: false,
      status: 400,
      reason: "protocol",
      message: `Protocol '${options.protocol}' not in the request's protocol list (non negotiable)`,
      headers: [],
    });
  }
  const socket = new ServerWebSocket(req.url, result.protocol ?? "");
  const response = upgradeResponse();
  const request = recordRequest(req);
  const headLines = result.headers.map(([k, v]) => `${k}: ${v}\r\n`).join("");
  const limits = {
    maxMessageSize: options.maxMessageSize,
    maxFramePayload: options.maxMessageSize,
  };
  registerSession(response, {
    kind: "ws",
    head: () => `HTTP/1.1 101 Switching Protocols\r\n${headLines}\r\n`,
    // Method parameters are bivariant: the server's env carries every kind's hooks.
    attach(sock, leftover, _framing, env: SessionEnv<WsHooks>, listener) {
      const session = new WsSession({
        env,
        socket: sock,
        ws: socket,
        parser: new FrameParser(limits),
        generation: env.generation,
        listener,
        request,
        maxBufferedAmount: options.maxBufferedAmount,
      });
      session.start(leftover, false);
    },
    abandon() {
      socket.close();
    },
  });
  return { socket, response };
}

/** The `101` a handler returns. */
export function upgradeResponse(): Response {
  const response = new Response(null, { status: 200 });
  // Response cannot be built with 101; apps (and frameworks) that look see the real status.
  Object.defineProperty(response, "status", { value: 101 });
  return response;
}
