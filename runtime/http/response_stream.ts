/**
 * @module
 * Writes a response body that must be read as a stream (a `ReadableStream`, a Blob, anything
 * Deno does not hold whole): one send with Content-Length when the stream turns out to hold a
 * single chunk, else chunked (HTTP/1.1) or close-delimited (HTTP/1.0), with backpressure.
 * Writes through the socket it is given; owns neither the socket nor the exchange.
 */
import type { Socket } from "../io/mod.ts";
import type { Logger } from "../log.ts";
import { describeError } from "../errors.ts";
import {
  encodeChunk,
  encodeMessage,
  type Framing,
  LAST_CHUNK,
  type ResponseHeadOptions,
  responseHeadString,
  toBytes,
} from "./writer.ts";

/** Write-queue size past which a streaming response waits for the socket to drain. */
const WRITE_HWM = 64 * 1024;
const NOT_YET: unique symbol = Symbol("not yet");
type ReadResult = ReadableStreamReadResult<Uint8Array>;

/** What {@linkcode writeStreamedResponse} writes besides the body. */
export interface StreamedResponse {
  /** The head, less its framing (decided here). */
  head: Omit<ResponseHeadOptions, "framing">;
  /** The handler's Content-Length, or -1. */
  userLength: number;
  /** A HEAD request: the head only. */
  isHead: boolean;
  /** The request's HTTP minor version. */
  minor: number;
  /** "METHOD target", for the log line when the body fails. */
  describe(): string;
  log: Logger;
}

/**
 * Writes `body` (head first) to `socket`. Resolves with whether the connection must close
 * after it; rejects (having logged, unless the peer left) when the body or the socket failed.
 */
export async function writeStreamedResponse(
  socket: Socket,
  body: ReadableStream<Uint8Array>,
  opts: StreamedResponse,
): Promise<boolean> {
  const { head, userLength, isHead } = opts;
  let isClose = head.isClose;
  const reader = body.getReader();
  try {
    const first = await reader.read();
    // A second read that is already settled tells a fixed body from a live stream.
    let pending: Promise<ReadResult> | null = null;
    let second: ReadResult | null = null;
    if (!first.done) {
      pending = reader.read();
      const raced = await Promise.race<ReadResult | typeof NOT_YET>([pending, NOT_YET]);
      if (raced !== NOT_YET) {
        second = raced;
        pending = null;
      }
    }
    if (first.done || second?.done) {
      // The whole body is known: one send with Content-Length (RFC 9112 §6.2).
      const bytes = first.done ? null : toBytes(first.value);
      const text = responseHeadString({
        ...head,
        framing: { kind: "length", length: bytes?.byteLength ?? 0 },
      });
      socket.write(encodeMessage(text, isHead ? null : bytes));
      return isClose;
    }
    // A stream: chunked for HTTP/1.1, close-delimited for HTTP/1.0 (RFC 9112 §6.3 (8)).
    let framing: Framing;
    if (userLength >= 0) framing = { kind: "length", length: userLength };
    else if (isHead) framing = { kind: "none" };
    else if (opts.minor === 0) framing = { kind: "close" };
    else framing = { kind: "chunked" };
    if (framing.kind === "close") isClose = true;
    const text = responseHeadString({
      ...head,
      framing,
      isClose,
      isKeepAlive10: head.isKeepAlive10 && !isClose,
    });
    if (isHead) {
      reader.cancel().catch(() => {});
      socket.write(encodeMessage(text, null));
      return isClose;
    }
    const isChunked = framing.kind === "chunked";
    const firstBytes = toBytes(first.value!);
    socket.write(encodeMessage(text, isChunked ? encodeChunk(firstBytes) : firstBytes));
    let sent = firstBytes.byteLength;
    let ready = second;
    for (;;) {
      const r = ready ?? await pending!;
      ready = null;
      if (r.done) break;
      const bytes = toBytes(r.value);
      if (bytes.byteLength > 0) {
        if (!socket.write(isChunked ? encodeChunk(bytes) : bytes, isChunked)) {
          throw new Error("peer went away");
        }
        sent += bytes.byteLength;
      }
      if (socket.bufferedAmount > WRITE_HWM) await socket.drained();
      if (!socket.isOpen || socket.isBroken) throw new Error("peer went away");
      pending = reader.read();
    }
    if (framing.kind === "length" && sent !== framing.length) {
      throw new Error(`body was ${sent} bytes, Content-Length said ${framing.length}`);
    }
    if (isChunked) socket.write(LAST_CHUNK, true);
    return isClose;
  } catch (err) {
    reader.cancel(err).catch(() => {});
    if (socket.isOpen && !socket.isBroken) {
      opts.log.error(`response body failed for ${opts.describe()}: ${describeError(err)}`);
    }
    throw err;
  }
}
