/**
 * @module
 * A parsed request head (parser.ts makes it): the facts the engine acts on (method, version,
 * framing, keep-alive) as fields; the target, the Host and each field line as offsets, cut
 * into strings only when asked. Until `freeze()` the offsets point into the bytes the head
 * was parsed from, which the connection reuses at its next read: whoever keeps the head past
 * that (a Request handed to the app) freezes it first — one latin-1 copy of the head, as text.
 * Pure data: no sockets, no Request.
 */
const decoder = new TextDecoder();

/** A parsed request head. */
export class RequestHead {
  readonly method: string;
  /** HTTP minor version: 0 or 1. */
  readonly minor: number;
  /** -1 when the request has no Content-Length. */
  contentLength = -1;
  isChunked = false;
  /** Whether the connection may carry another request after this one. */
  isKeepAlive: boolean;
  /** `Expect` value, lowercased, or null. */
  expect: string | null = null;
  /** `Connection: upgrade` with an `Upgrade` field: the Upgrade value, else null. */
  upgrade: string | null = null;
  /** The bytes parsed, until frozen; then null. */
  #buf: Uint8Array | null;
  readonly #start: number;
  readonly #end: number;
  /** Once frozen: the head as latin-1 text, request line to last field CRLF. */
  #text: string | null = null;
  readonly #targetStart: number;
  readonly #targetEnd: number;
  /** Per field line, offsets into #text: name start, name end, value start, value end. */
  readonly #fields: number[];
  /** Field index of the (single) Host line, or -1. */
  readonly #hostIndex: number;
  #list: [string, string][] | null = null;

  /**
   * A head over `buf` [start, end); `target` and `fields` offsets are relative to `start`.
   * `buf` must not change until the head is frozen.
   */
  constructor(
    buf: Uint8Array,
    start: number,
    end: number,
    method: string,
    minor: number,
    targetStart: number,
    targetEnd: number,
    fields: number[],
    hostIndex: number,
  ) {
    this.#buf = buf;
    this.#start = start;
    this.#end = end;
    this.method = method;
    this.minor = minor;
    this.isKeepAlive = minor === 1;
    this.#targetStart = targetStart;
    this.#targetEnd = targetEnd;
    this.#fields = fields;
    this.#hostIndex = hostIndex;
    // The first byte of the target (`/` for origin-form), read while the bytes are there.
    this.targetFirstChar = buf[start + targetStart];
  }

  /** The first byte of the target: `/` (0x2f) for origin-form. */
  readonly targetFirstChar: number;

  /** Makes the head independent of the bytes it was parsed from (they are about to change). */
  freeze(): void {
    this.#textOf();
  }

  #textOf(): string {
    if (this.#text === null) {
      this.#text = latin1(this.#buf!, this.#start, this.#end);
      this.#buf = null;
    }
    return this.#text;
  }

  /** The request-target exactly as sent. */
  get target(): string {
    return this.#textOf().slice(this.#targetStart, this.#targetEnd);
  }

  /** The Host field's value, or null. */
  get host(): string | null {
    return this.#hostIndex < 0 ? null : this.value(this.#hostIndex);
  }

  /** How many field lines the head has. */
  get fieldCount(): number {
    return this.#fields.length >> 2;
  }

  /** Field line `i`'s name, lowercased. */
  name(i: number): string {
    const f = this.#fields;
    return this.#textOf().slice(f[i * 4], f[i * 4 + 1]).toLowerCase();
  }

  /** Field line `i`'s value, without surrounding whitespace. */
  value(i: number): string {
    const f = this.#fields;
    return this.#textOf().slice(f[i * 4 + 2], f[i * 4 + 3]);
  }

  /**
   * The value of the fields called `name` (any case): one value, or all of them joined with
   * ", " (RFC 9110 §5.3), or null when there is none. Names are compared without cutting them.
   */
  get(name: string): string | null {
    const f = this.#fields, text = this.#textOf(), n = name.length;
    let out: string | null = null;
    for (let i = 0; i < f.length; i += 4) {
      const start = f[i];
      if (f[i + 1] - start !== n || !sameName(text, start, name)) continue;
      const value = text.slice(f[i + 2], f[i + 3]);
      out = out === null ? value : `${out}, ${value}`;
    }
    return out;
  }

  /** Every field line in order: names lowercased, values as sent (made once, then shared). */
  get headers(): [string, string][] {
    if (this.#list !== null) return this.#list;
    const list: [string, string][] = [];
    for (let i = 0; i < this.fieldCount; i++) list.push([this.name(i), this.value(i)]);
    return this.#list = list;
  }
}

/** Whether `text` at `start` spells `name`, ASCII letters compared without case. */
function sameName(text: string, start: number, name: string): boolean {
  for (let j = 0; j < name.length; j++) {
    const a = text.charCodeAt(start + j), b = name.charCodeAt(j);
    if (a !== b && ((a | 0x20) !== (b | 0x20) || (a | 0x20) < 0x61 || (a | 0x20) > 0x7a)) {
      return false;
    }
  }
  return true;
}

/** Bytes [from, to) as latin-1 text (RFC 9110 §5.5: field values are octets). */
export function latin1(buf: Uint8Array, from: number, to: number): string {
  let isAscii = true;
  for (let i = from; i < to; i++) {
    if (buf[i] > 0x7f) {
      isAscii = false;
      break;
    }
  }
  if (isAscii) return decoder.decode(buf.subarray(from, to));
  let s = "";
  for (let i = from; i < to; i += 4096) {
    s += String.fromCharCode(...buf.subarray(i, Math.min(to, i + 4096)));
  }
  return s;
}
