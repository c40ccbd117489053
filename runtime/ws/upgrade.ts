/**
 * @module
 * `upgradeWebSocket(req)`: the app-facing entry point, shaped like `Deno.upgradeWebSocket`.
 * Validates the opening handshake (RFC 6455 §4.2.1), returns the app's socket and a `101`
 * response that the engine recognises and answers by handing the connection to a
 * `WsSession`; and `resumeWebSocket`, which rebuilds a session from a handoff record in the
 * next process. permessage-deflate is never negotiated: its compression context would have to
 * cross the handoff, and RFC 6455 §9.1 lets a server accept no extension.
 */
import { registerSession, type SessionEnv } from "../sessions/mod.ts";
import { requestHeadOf } from "../http/mod.ts";
import { Socket } from "../io/mod.ts";
import type { ConnectionRecord } from "../handoff/mod.ts";
import { describeError } from "../errors.ts";
import { CLOSE_CODE } from "./constants.ts";
import { encodeClose } from "./encoder.ts";
import { type HandshakeRejected, validateHandshake } from "./handshake.ts";
import { FrameParser } from "./parser.ts";
import { type WsHooks, type WsProto, WsSession } from "./session.ts";
import { ServerWebSocket } from "./socket.ts";

/** Options for {@linkcode upgradeWebSocket}. */
export interface UpgradeWebSocketOptions {
  /** The subprotocol to accept, if the client offered it (as `Deno.upgradeWebSocket`). */
  protocol?: string;
  /** Largest message accepted (default 16 MiB); bigger ones close the connection with 1009. */
  maxMessageSize?: number;
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
  override name = "WebSocketUpgradeError";
  readonly status: 400 | 426;
  readonly #headers: [string, string][];

  constructor(rejected: HandshakeRejected) {
    super(`invalid WebSocket upgrade: ${rejected.message}`);
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
 * throws) when `req` is not a valid upgrade request; return its `response` (400 or 426).
 */
export function upgradeWebSocket(
  req: Request,
  options: UpgradeWebSocketOptions = {},
): WebSocketUpgrade {
  const head = requestHeadOf(req);
  const result = validateHandshake({
    method: req.method,
    httpVersion: head?.minor === 0 ? "HTTP/1.0" : "HTTP/1.1",
    headers: req.headers,
    protocols: options.protocol ? [options.protocol] : [],
  });
  if (!result.ok) throw new WebSocketUpgradeError(result);
  const socket = new ServerWebSocket(req.url, result.protocol ?? "");
  const response = new Response(null, { status: 200 });
  // Response cannot be built with 101; apps (and frameworks) that look see the real status.
  Object.defineProperty(response, "status", { value: 101 });
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
      });
      session.start(leftover, false);
    },
    abandon() {
      socket.close();
    },
  });
  return { socket, response };
}

function checkProto(p: unknown): WsProto {
  const o = p as Record<string, unknown> | null;
  if (
    o === null || typeof o !== "object" || o.v !== 1 || typeof o.url !== "string" ||
    typeof o.protocol !== "string" || (o.binaryType !== "blob" && o.binaryType !== "arraybuffer") ||
    typeof o.generation !== "number" || typeof o.parser !== "object"
  ) {
    throw new TypeError("WebSocket handoff record has an unknown shape");
  }
  return o as unknown as WsProto;
}

/**
 * Rebuilds a WebSocket from its handoff record and calls the app's `onWebSocketResume`. Takes
 * ownership of `fd`. A record that cannot be used closes the connection with 1012 (service
 * restart) so the client reconnects.
 */
export function resumeWebSocket(
  fd: number,
  record: ConnectionRecord,
  env: SessionEnv<WsHooks>,
): void {
  let proto: WsProto;
  let parser: FrameParser;
  try {
    proto = checkProto(record.proto);
    parser = FrameParser.restore(proto.parser);
  } catch (err) {
    env.log.error(`cannot resume WebSocket fd ${fd}: ${describeError(err)}: closing 1012`);
    refuse(fd, env);
    return;
  }
  const socket = new Socket(env.loop, fd, { onReadable() {}, onHangup() {} });
  const ws = new ServerWebSocket(proto.url, proto.protocol);
  ws.binaryType = proto.binaryType;
  const session = new WsSession({
    env,
    socket,
    ws,
    parser,
    generation: proto.generation,
    listener: record.listener,
  });
  session.start(new Uint8Array(0), true);
  try {
    env.hooks.onWebSocketResume?.(ws, record.app, {
      url: proto.url,
      protocol: proto.protocol,
      lastEventId: "",
      generation: proto.generation,
    });
  } catch (err) {
    env.log.error(`onWebSocketResume failed: ${describeError(err)}: closing 1012`);
    session.close(CLOSE_CODE.SERVICE_RESTART, "service restart");
  }
}

/** Sends close 1012 on a connection we cannot resume, and closes it. */
function refuse(fd: number, env: SessionEnv): void {
  const socket = new Socket(env.loop, fd, { onReadable() {}, onHangup() {} });
  socket.write(encodeClose({ code: CLOSE_CODE.SERVICE_RESTART, reason: "service restart" }), true);
  socket.drained().then(() => socket.close());
}
