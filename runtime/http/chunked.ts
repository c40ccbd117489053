/**
 * @module
 * Decodes a chunked request body (RFC 9112 §7.1) from bytes; never touches sockets. Refuses a
 * malformed size line (extensions are held to their grammar, then ignored), missing CRLF
 * after data, bare LF, invalid trailer fields and bodies over the limit, each as an {@linkcode HttpError} ("bad-chunk" → 400, "body-too-large" → 413).
 */
import { HttpError } from "./errors.ts";
import { IS_FIELD_CHAR, IS_TCHAR } from "./chars.ts";
import type { HttpLimits } from "./limits.ts";

type ChunkedState =
  | "size"
  | ExtState
  | "size-lf"
  | "data"
  | "data-cr"
  | "data-lf"
  | "trailer"
  | "trailer-lf"
  | "done";

/**
 * Where the chunk-size line is after the hex digits (RFC 9112 §7.1.1):
 *   chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
 *   chunk-ext-name = token; chunk-ext-val = token / quoted-string
 * "ext-end": after the digits or a complete extension (CRLF, ";" or BWS may follow);
 * "ext-bws": whitespace after one (only ";" may follow, or "=" after a bare name).
 */
type ExtState =
  | "ext-end"
  | "ext-bws"
  | "ext-name-bws"
  | "ext-name"
  | "ext-value-bws"
  | "ext-token"
  | "ext-quoted"
  | "ext-quoted-pair";

const CR = 13, LF = 10, SP = 32, HTAB = 9, SEMI = 0x3b, EQUALS = 0x3d, DQUOTE = 0x22;
const BACKSLASH = 0x5c;
/** Longest chunk-size line (size + extensions) accepted. */
const MAX_SIZE_LINE = 4096;
/** More hex digits than this could overflow a safe integer. */
const MAX_SIZE_DIGITS = 13;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** An incremental chunked-body decoder for one request. */
export class ChunkedDecoder {
  #state: ChunkedState = "size";
  #remaining = 0;
  #digits = 0;
  #lineBytes = 0;
  /** In "ext-bws": the extension before the whitespace is a name still without "=". */
  #isBareName = false;
  #total = 0;
  #trailerLine: number[] = [];
  #trailerCount = 0;
  #trailerBytes = 0;
  readonly #limits: HttpLimits;

  constructor(limits: HttpLimits) {
    this.#limits = limits;
  }

  /** Whether the last chunk and the trailer section have been read. */
  get isDone(): boolean {
    return this.#state === "done";
  }

  /** Body bytes decoded so far. */
  get received(): number {
    return this.#total;
  }

  /**
   * Feeds `buf[from, to)`. Calls `onData` with each run of body bytes (a view valid only during
   * the call). Returns how many bytes were consumed: all of them, or fewer when the body ends
   * inside `buf` (the rest belongs to the next request).
   */
  push(buf: Uint8Array, from: number, to: number, onData: (data: Uint8Array) => void): number {
    let i = from;
    while (i < to && this.#state !== "done") {
      const c = buf[i];
      switch (this.#state) {
        case "size": {
          const h = hexValue(c);
          if (h >= 0) {
            if (++this.#digits > MAX_SIZE_DIGITS) throw this.#bad("chunk size too large");
            this.#remaining = this.#remaining * 16 + h;
            this.#countLine();
            i++;
            break;
          }
          if (this.#digits === 0) throw this.#bad("chunk size is not hex");
          this.#state = "ext-end";
          break;
        }
        case "size-lf":
          if (c !== LF) throw this.#bad("chunk size line not ended by CRLF");
          i++;
          this.#lineBytes = 0;
          this.#digits = 0;
          if (this.#remaining === 0) {
            this.#state = "trailer";
            break;
          }
          this.#total += this.#remaining;
          if (this.#total > this.#limits.maxBodyBytes) {
            throw new HttpError("body-too-large", `body over ${this.#limits.maxBodyBytes} bytes`);
          }
          this.#state = "data";
          break;
        case "data": {
          const n = Math.min(this.#remaining, to - i);
          onData(buf.subarray(i, i + n));
          i += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#state = "data-cr";
          break;
        }
        case "data-cr":
          if (c !== CR) throw this.#bad("chunk data not followed by CRLF");
          this.#state = "data-lf";
          i++;
          break;
        case "data-lf":
          if (c !== LF) throw this.#bad("chunk data not followed by CRLF");
          this.#state = "size";
          i++;
          break;
        case "trailer":
          if (c === CR) this.#state = "trailer-lf";
          else {
            if (c === LF) throw this.#bad("bare LF in trailer section");
            this.#trailerLine.push(c);
            if (++this.#trailerBytes > this.#limits.maxHeadBytes) {
              throw new HttpError("headers-too-large", "trailer section too large");
            }
          }
          i++;
          break;
        case "trailer-lf":
          if (c !== LF) throw this.#bad("trailer line not ended by CRLF");
          i++;
          this.#endTrailerLine();
          break;
        default:
          // Extensions are checked to the grammar and ignored: junk after the size (a
          // "5 garbage" line) must not pass for a size another parser reads differently.
          this.#extByte(c);
          this.#countLine();
          i++;
      }
    }
    return i - from;
  }

  /** One byte of the chunk-size line after the digits (see {@linkcode ExtState}). */
  #extByte(c: number): void {
    const isWs = c === SP || c === HTAB;
    switch (this.#state as ExtState) {
      case "ext-end":
      case "ext-token":
        if (this.#state === "ext-token" && IS_TCHAR[c] === 1) return;
        if (c === CR) this.#state = "size-lf";
        else if (c === SEMI) this.#state = "ext-name-bws";
        else if (isWs) {
          this.#state = "ext-bws";
          this.#isBareName = false;
        } else throw this.#bad("invalid chunk extension");
        return;
      case "ext-bws":
        if (isWs) return;
        if (c === SEMI) this.#state = "ext-name-bws";
        else if (c === EQUALS && this.#isBareName) this.#state = "ext-value-bws";
        else throw this.#bad("invalid chunk extension");
        return;
      case "ext-name-bws":
        if (isWs) return;
        if (IS_TCHAR[c] === 0) throw this.#bad("chunk extension without a name");
        this.#state = "ext-name";
        return;
      case "ext-name":
        if (IS_TCHAR[c] === 1) return;
        if (c === CR) this.#state = "size-lf";
        else if (c === SEMI) this.#state = "ext-name-bws";
        else if (c === EQUALS) this.#state = "ext-value-bws";
        else if (isWs) {
          this.#state = "ext-bws";
          this.#isBareName = true;
        } else throw this.#bad("invalid chunk extension name");
        return;
      case "ext-value-bws":
        if (isWs) return;
        if (c === DQUOTE) this.#state = "ext-quoted";
        else if (IS_TCHAR[c] === 1) this.#state = "ext-token";
        else throw this.#bad("invalid chunk extension value");
        return;
      case "ext-quoted":
        // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text (RFC 9110 §5.6.4)
        if (c === DQUOTE) this.#state = "ext-end";
        else if (c === BACKSLASH) this.#state = "ext-quoted-pair";
        else if (IS_FIELD_CHAR[c] === 0) throw this.#bad("invalid byte in chunk extension");
        return;
      case "ext-quoted-pair":
        if (IS_FIELD_CHAR[c] === 0) throw this.#bad("invalid byte in chunk extension");
        this.#state = "ext-quoted";
        return;
    }
  }

  #countLine(): void {
    if (++this.#lineBytes > MAX_SIZE_LINE) throw this.#bad("chunk size line too long");
  }

  #endTrailerLine(): void {
    const line = this.#trailerLine;
    if (line.length === 0) {
      this.#state = "done";
      return;
    }
    // field-name ":" OWS field-value OWS, as in the head (RFC 9112 §7.1.2).
    let j = 0;
    while (j < line.length && IS_TCHAR[line[j]] === 1) j++;
    if (j === 0 || line[j] !== 0x3a) throw this.#bad("invalid trailer field");
    for (j++; j < line.length; j++) {
      if (IS_FIELD_CHAR[line[j]] === 0) throw this.#bad("invalid byte in trailer field");
    }
    if (++this.#trailerCount > this.#limits.maxHeaderCount) {
      throw new HttpError("too-many-headers", "too many trailer fields");
    }
    this.#trailerLine = [];
    this.#state = "trailer";
  }

  #bad(detail: string): HttpError {
    return new HttpError("bad-chunk", detail);
  }
}
