/**
 * @module
 * An SSE response in the next process (docs/design.md, "What gets handed off"): the same
 * response goes on, on the carried connection, with no new head. An `sse()` stream goes to the
 * app's `onSSEResume` hook when it has one. Otherwise the request that opened the stream is
 * replayed (sessions/replay.ts) with `Last-Event-ID` set to the last event id written, and
 * what the handler returns continues the body: an `sse()` stream, or a streaming
 * `text/event-stream` Response whose body is piped into the same chunked (or close-delimited)
 * framing. A stream that cannot be continued — a record that cannot be used, a hook or replay
 * that throws, a replay that returns something else — is ended (the last chunk, so the client
 * sees the response end) and logged; EventSource then reconnects with its `Last-Event-ID`.
 */
import { Socket } from "../io/mod.ts";
import {
  checkRequestRecord,
  claimSession,
  PendingReplay,
  replayRequest,
  type RequestRecord,
  type SessionEnv,
} from "../sessions/mod.ts";
import { isEventStream } from "../http/mod.ts";
import type { ConnectionRecord } from "../handoff/mod.ts";
import { describeError } from "../errors.ts";
import { endResponse, type SseHooks, type SseProto, SseSession } from "./session.ts";
import { SSEStream, startStreamSession } from "./stream.ts";
import { BodySource } from "./body.ts";

/** Reads a record's proto, version 1 or 2. Throws TypeError for anything else. */
function checkProto(p: unknown): SseProto {
  const o = p as Record<string, unknown> | null;
  if (
    o === null || typeof o !== "object" || (o.v !== 1 && o.v !== 2) ||
    typeof o.url !== "string" || typeof o.lastEventId !== "string" ||
    (o.framing !== "chunked" && o.framing !== "close") ||
    (o.v === 2 && o.source !== "sse" && o.source !== "body")
  ) {
    throw new TypeError("SSE handoff record has an unknown shape");
  }
  return {
    v: 2,
    url: o.url,
    lastEventId: o.lastEventId,
    framing: o.framing,
    generation: typeof o.generation === "number" ? o.generation : 0,
    source: o.v === 2 ? o.source as SseProto["source"] : "sse",
    request: o.v === 2 ? checkRequestRecord(o.request) : null,
  };
}

/** Continues an SSE response from its handoff record (module comment). Takes ownership of `fd`. */
export function resumeSse(
  fd: number,
  record: ConnectionRecord,
  env: SessionEnv<SseHooks>,
): void {
  const socket = new Socket(env.loop, fd, { onReadable() {}, onHangup() {} });
  let p: SseProto;
  try {
    p = checkProto(record.proto);
  } catch (err) {
    env.log.error(`cannot resume SSE stream on fd ${fd}: ${describeError(err)}: closing it`);
    socket.close();
    return;
  }
  const generation = p.generation || env.generation;
  const onResume = env.hooks.onSSEResume;
  if (p.source === "sse" && onResume !== undefined) {
    const stream = new SSEStream(p.url, p.lastEventId);
    startStreamSession(stream, {
      env,
      socket,
      framing: p.framing,
      buffered: record.buffered,
      listener: record.listener,
      request: p.request,
      generation,
    });
    try {
      onResume(stream, record.app, {
        url: p.url,
        protocol: "",
        lastEventId: p.lastEventId,
        generation,
      });
    } catch (err) {
      env.log.error(`onSSEResume failed: ${describeError(err)}: ending the stream`);
      stream.close();
    }
    return;
  }
  if (p.request === null) {
    env.log.error(
      `SSE stream ${p.url} not resumed: its record has no request to replay: ending it`,
    );
    endResponse(socket, p.framing, record.buffered, env, record.listener);
    return;
  }
  replay(socket, p, p.request, record, env);
}

/** Runs the opening request again and continues the response with what the handler returns. */
function replay(
  socket: Socket,
  p: SseProto,
  request: RequestRecord,
  record: ConnectionRecord,
  env: SessionEnv<SseHooks>,
): void {
  const pending = new PendingReplay("sse", socket, record, env, {
    name: `SSE stream ${request.url}`,
    shutdown: (s) => endResponse(s, p.framing, record.buffered, env, record.listener),
  });
  // What a reconnecting EventSource would send (WHATWG HTML §9.2.4: only when not empty).
  const run = replayRequest({
    env,
    record: request,
    listener: record.listener,
    fd: socket.fd,
    set: { "last-event-id": p.lastEventId === "" ? null : p.lastEventId },
    kind: "sse",
  });
  run.outcome.then((outcome) => {
    run.complete();
    if (!pending.finish()) {
      run.abort(new Error("the connection went away during the replay"));
      return;
    }
    let why: string;
    if (outcome.ok) {
      const res = outcome.response;
      const starter = claimSession(res);
      if (starter?.kind === "sse") {
        // An `sse()` stream: it goes on from the Last-Event-ID the replay gave it.
        starter.attach(socket, record.buffered, p.framing, env, record.listener);
        socket.resumeReading();
        return;
      }
      starter?.abandon();
      if (
        starter === undefined && res.status === 200 && res.body !== null &&
        isEventStream(res.headers.get("content-type"))
      ) {
        const source = new BodySource(res.body, {
          url: request.url,
          lastEventId: p.lastEventId,
          abortRequest: (reason) => run.abort(reason),
        });
        new SseSession({
          env,
          socket,
          source,
          framing: p.framing,
          buffered: record.buffered,
          generation: p.generation,
          listener: record.listener,
          request,
        }).start();
        socket.resumeReading();
        return;
      }
      res.body?.cancel().catch(() => {});
      why = `the handler answered ${
        starter?.kind === "ws" ? "a WebSocket upgrade" : describe(res)
      }`;
    } else {
      why = outcome.reason;
    }
    run.abort(new Error("the replay did not continue the stream"));
    env.log.error(`SSE stream ${request.url} not resumed: ${why}: ending it`);
    endResponse(socket, p.framing, record.buffered, env, record.listener);
  });
}

function describe(res: Response): string {
  const type = res.headers.get("content-type");
  return `status ${res.status}${type ? ` (${type})` : ""}${res.body === null ? ", no body" : ""}`;
}
