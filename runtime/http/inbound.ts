/**
 * @module
 * The bytes a connection has read but not yet consumed: a growable buffer with a read and a
 * write offset. The fast path (everything consumed from a single read) never copies: the
 * connection parses straight from the shared read buffer and only keeps what is left. A
 * buffer grown past `KEEP_BYTES` (a large head, a burst of pipelined requests) is released as
 * soon as it is empty, so an idle connection never holds more than that.
 */

/** Capacity kept across requests (a split request reuses it); larger is released when empty. */
const KEEP_BYTES = 4096;
const EMPTY = new Uint8Array(0);

/** Unconsumed inbound bytes of one connection. */
export class Inbound {
  #buf: Uint8Array = EMPTY;
  #start = 0;
  #end = 0;
  /** A borrowed view (the shared read buffer) standing in for #buf until `keep()`. */
  #borrowed: Uint8Array | null = null;

  get length(): number {
    return this.#borrowed !== null ? this.#borrowed.byteLength : this.#end - this.#start;
  }

  /** The unconsumed bytes. Valid until the next append, consume or keep. */
  view(): Uint8Array {
    return this.#borrowed ?? this.#buf.subarray(this.#start, this.#end);
  }

  /** Adds bytes. A borrowed `chunk` must be released with `keep()` before it is reused. */
  push(chunk: Uint8Array, isBorrowed: boolean): void {
    if (this.length === 0 && isBorrowed) {
      this.#borrowed = chunk;
      this.#start = this.#end = 0;
      return;
    }
    this.keep();
    const need = this.#end - this.#start + chunk.byteLength;
    if (this.#end + chunk.byteLength > this.#buf.byteLength) {
      const next = need > this.#buf.byteLength / 2
        ? new Uint8Array(Math.max(need * 2, KEEP_BYTES))
        : this.#buf;
      next.set(this.#buf.subarray(this.#start, this.#end), 0);
      this.#buf = next;
      this.#end -= this.#start;
      this.#start = 0;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.byteLength;
  }

  /** Drops `n` bytes from the front. */
  consume(n: number): void {
    if (this.#borrowed !== null) {
      this.#borrowed = n >= this.#borrowed.byteLength ? null : this.#borrowed.subarray(n);
      return;
    }
    this.#start += n;
    if (this.#start >= this.#end) this.clear();
  }

  /** Copies borrowed bytes into our own buffer (before the shared buffer is reused). */
  keep(): void {
    const b = this.#borrowed;
    if (b === null) return;
    this.#borrowed = null;
    if (this.#buf.byteLength < b.byteLength) {
      this.#buf = new Uint8Array(Math.max(b.byteLength, KEEP_BYTES));
    }
    this.#buf.set(b, 0);
    this.#start = 0;
    this.#end = b.byteLength;
  }

  /** A copy of the unconsumed bytes (for handoff). */
  snapshot(): Uint8Array {
    return this.view().slice();
  }

  clear(): void {
    this.#borrowed = null;
    this.#start = this.#end = 0;
    if (this.#buf.byteLength > KEEP_BYTES) this.#buf = EMPTY;
  }
}
