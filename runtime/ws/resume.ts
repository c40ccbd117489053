/**
 * @module
 * A WebSocket in the next process (docs/design.md, "What gets handed off"): rebuilt from its
 * handoff record — parser state, URL, subprotocol — and given back to the app. With an
 * `onWebSocketResume` hook the hook gets it. Without one, the request that opened it is
 * replayed to the handler of its listener (sessions/replay.ts): the handler's own
 * `upgradeWebSocket` (or `Deno.upgradeWebSocket`) returns the carried socket, the app attaches
 * its listeners as for a new client, and `open` fires once the handler has returned, before a
 * byte the client sent meanwhile is read. A session that cannot be given back — a record that
 * cannot be used, a hook or replay that throws, a replay that does not return the carried
 * socket — is closed with 1012 (service restart) and logged, so its client reconnects; never
 * left open and deaf.
 */
import {
  checkRequestRecord,
  closeWhenDrained,
  othersReplayed,
  PendingReplay,
  replayRequest,
  type RequestRecord,
  type SessionEnv,
} from "../sessions/mod.ts";
import { Socket } from "../io/mod.ts";
import type { ConnectionRecord } from "../handoff/mod.ts";
import { describeError } from "../errors.ts";
import { CLOSE_CODE } from "./constants.ts";
import { encodeClose } from "./encoder.ts";
import { FrameParser } from "./parser.ts";
import { type WsHooks, type WsProto, WsSession } from "./session.ts";
import { ServerWebSocket } from "./socket.ts";
import { upgradeResponse, type WebSocketUpgrade } from "./upgrade.ts";

/** Reads a record's proto, version 1 or 2. Throws TypeError for anything else. */
function checkProto(p: unknown): WsProto {
  const o = p as Record<string, unknown> | null;
  if (
    o === null || typeof o !== "object" || (o.v !== 1 && o.v !== 2) ||
    typeof o.url !== "string" || typeof o.protocol !== "string" ||
    (o.binaryType !== "blob" && o.binaryType !== "arraybuffer") ||
    typeof o.generation !== "number" || typeof o.parser !== "object"
  ) {
    throw new TypeError("WebSocket handoff record has an unknown shape");
  }
  return { ...o, v: 2, request: o.v === 2 ? checkRequestRecord(o.request) : null } as WsProto;
}

/**
 * Rebuilds a WebSocket from its handoff record and gives it back to the app (module comment).
 * Takes ownership of `fd`.
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
    refuse(new Socket(env.loop, fd, { onReadable() {}, onHangup() {} }));
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
    request: proto.request,
  });
  const onResume = env.hooks.onWebSocketResume;
  if (onResume !== undefined) {
    session.start(new Uint8Array(0), true);
    try {
      onResume(ws, record.app, {
        url: proto.url,
        protocol: proto.protocol,
        lastEventId: "",
        generation: proto.generation,
      });
    } catch (err) {
      env.log.error(`onWebSocketResume failed: ${describeError(err)}: closing 1012`);
      session.close(CLOSE_CODE.SERVICE_RESTART, "service restart");
    }
    return;
  }
  if (proto.request === null) {
    return notResumed(session, socket, proto.url, "its record has no request to replay", env);
  }
  replay(session, ws, proto.request, socket, record, env);
}

/** Runs the opening request again; starts the session if the app took the carried socket. */
function replay(
  session: WsSession,
  ws: ServerWebSocket,
  request: RequestRecord,
  socket: Socket,
  record: ConnectionRecord,
  env: SessionEnv<WsHooks>,
): void {
  const pending = new PendingReplay("ws", socket, record, env, {
    name: `WebSocket ${request.url}`,
    shutdown: (s) => refuse(s, CLOSE_CODE.GOING_AWAY, "server shutting down"),
  });
  const response = upgradeResponse();
  const carried: WebSocketUpgrade = { socket: ws, response };
  const run = replayRequest({
    env,
    record: request,
    listener: record.listener,
    fd: socket.fd,
    kind: "ws",
    carried: () => carried,
  });
  run.outcome.then(async (outcome) => {
    if (!pending.finish()) {
      run.complete();
      run.abort(new Error("the connection went away during the replay"));
      return;
    }
    if (outcome.ok && outcome.response === response) {
      session.start(new Uint8Array(0), false, true); // `open`: the app fills its registries
      ws.addEventListener("close", () => run.abort(new Error("WebSocket closed")), { once: true });
      run.complete();
      await othersReplayed();
      session.readFrames();
      return;
    }
    run.complete();
    run.abort(new Error("the replay did not resume the WebSocket"));
    const why = outcome.ok
      ? run.ticket.isClaimed
        ? `the handler returned another response (status ${outcome.response.status})`
        : `the handler did not upgrade (status ${outcome.response.status})`
      : outcome.reason;
    notResumed(session, socket, request.url, why, env);
  });
}

/**
 * Closes a carried WebSocket the app did not take back: 1012, so its client reconnects. Reads
 * again so that the client's close reply completes the closing handshake.
 */
function notResumed(
  session: WsSession,
  socket: Socket,
  url: string,
  why: string,
  env: SessionEnv,
): void {
  env.log.error(`WebSocket ${url} not resumed: ${why}: closing 1012`);
  session.start(new Uint8Array(0), true);
  session.close(CLOSE_CODE.SERVICE_RESTART, "service restart");
  if (socket.isOpen) socket.resumeReading();
}

/**
 * Sends a close frame on a connection we cannot resume, and closes it once it is written (or
 * after the close timeout, when the client does not read).
 */
function refuse(
  socket: Socket,
  code: number = CLOSE_CODE.SERVICE_RESTART,
  reason = "service restart",
): void {
  socket.write(encodeClose({ code, reason }), true);
  closeWhenDrained(socket);
}
