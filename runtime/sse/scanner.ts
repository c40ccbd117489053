/**
 * @module
 * Follows an event stream as it is written (WHATWG HTML §9.2.6, "Interpreting an event
 * stream"), the way the client reads it: where each event ends (a blank line), and the last
 * event id the client holds (an `id` field, taken at the end of its event). A `text/event-stream`
 * body the app streams can then be stopped at an event boundary at a handoff and continued by
 * the next process from `Last-Event-ID`. Socket-free; keeps at most one short line.
 */

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const SPACE = 0x20;
/** Lines longer than this are not kept (an `id` line that long makes the stream uncarriable). */
const MAX_KEPT_LINE = 1024;
const BOM = [0xef, 0xbb, 0xbf];
const decoder = new TextDecoder();

/** Where an event stream stands after the bytes pushed so far. */
export class EventStreamScanner {
  /** The last event ID string a client holds after the bytes so far. */
  #lastEventId: string;
  /** The id buffer: set by `id` fields, taken into `lastEventId` at each blank line. */
  #idBuffer: string;
  #line = new Uint8Array(MAX_KEPT_LINE);
  #lineLength = 0;
  #isLineTooLong = false;
  /** No byte of the current line seen yet. */
  #isLineStart = true;
  /** The last byte was a CR: an LF right after it belongs to the same line end. */
  #isAfterCr = false;
  /** The current event has fields or comments not yet ended by a blank line. */
  #isInEvent = false;
  #bomLeft = 3;
  /** An `id` line was too long to keep: the client's last event id is unknown. */
  #isIdLost = false;

  /** `lastEventId`: what the client sent (`Last-Event-ID`), or "". */
  constructor(lastEventId = "") {
    this.#lastEventId = lastEventId;
    this.#idBuffer = lastEventId;
  }

  /** The id a client that read everything so far would reconnect with. */
  get lastEventId(): string {
    return this.#lastEventId;
  }

  /** Whether the bytes so far end between events (a client dispatched everything it got). */
  get isAtBoundary(): boolean {
    return !this.#isInEvent && this.#isLineStart;
  }

  /** Whether the last event id is known (no `id` line was too long to follow). */
  get isIdKnown(): boolean {
    return !this.#isIdLost;
  }

  /**
   * Takes `bytes`. With `untilBoundary`, stops right after the first event boundary and returns
   * how many bytes it took (the rest must not be written); otherwise takes all of them.
   */
  push(bytes: Uint8Array, untilBoundary = false): number {
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      if (this.#bomLeft > 0) {
        // One UTF-8 BOM at the very start is not part of the first line (§9.2.6).
        if (b === BOM[3 - this.#bomLeft]) {
          this.#bomLeft--;
          continue;
        }
        this.#bomLeft = 0;
      }
      if (b === LF && this.#isAfterCr) {
        this.#isAfterCr = false;
        continue;
      }
      this.#isAfterCr = b === CR;
      if (b === LF || b === CR) {
        if (this.#isLineStart) {
          this.#dispatch();
          if (untilBoundary) {
            // A CRLF's LF belongs to this line end: take it too.
            if (b === CR && bytes[i + 1] === LF) {
              this.#isAfterCr = false;
              return i + 2;
            }
            return i + 1;
          }
        } else this.#endLine();
        continue;
      }
      if (this.#isLineStart) {
        this.#isLineStart = false;
        this.#isInEvent = true;
      }
      if (this.#lineLength < MAX_KEPT_LINE) this.#line[this.#lineLength++] = b;
      else this.#isLineTooLong = true;
    }
    return bytes.length;
  }

  /** A non-empty line ended: an `id` field sets the id buffer. */
  #endLine(): void {
    const line = this.#line.subarray(0, this.#lineLength);
    const isId = line.length >= 2 && line[0] === 0x69 && line[1] === 0x64 && // "id"
      (line.length === 2 || line[2] === COLON);
    if (isId) {
      if (this.#isLineTooLong) this.#isIdLost = true;
      else {
        let start = 3;
        if (line.length > 3 && line[3] === SPACE) start = 4;
        const value = line.length <= 2 ? "" : decoder.decode(line.subarray(start));
        // §9.2.6: an id containing NULL is ignored.
        if (!value.includes("\0")) {
          this.#idBuffer = value;
          this.#isIdLost = false;
        }
      }
    }
    this.#lineLength = 0;
    this.#isLineTooLong = false;
    this.#isLineStart = true;
  }

  /** A blank line: the event ends, and the client's last event id is the id buffer. */
  #dispatch(): void {
    this.#lastEventId = this.#idBuffer;
    this.#isInEvent = false;
  }
}
