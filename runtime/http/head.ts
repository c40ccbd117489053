/**
 * @module
 * A parsed request head (parser.ts makes it): the facts the engine acts on (method, version,
 * framing, keep-alive) as fields, and everything else cut on demand from one latin-1 copy of
 * the head's bytes — the target, the Host, each field line — so a handler that reads two
 * headers pays for two, not for all of them. Pure data: no sockets, no Request.
 */

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
  /** The head as latin-1 text (one character per byte), request line to last field CRLF. */
  readonly #text: string;
  readonly #targetStart: number;
  readonly #targetEnd: number;
  /** Per field line, offsets into #text: name start, name end, value start, value end. */
  readonly #fields: number[];
  /** Field index of the (single) Host line, or -1. */
  readonly #hostIndex: number;
  #list: [string, string][] | null = null;

  constructor(
    text: string,
    method: string,
    minor: number,
    target: [start: number, end: number],
    fields: number[],
    hostIndex: number,
  ) {
    this.#text = text;
    this.method = method;
    this.minor = minor;
    this.isKeepAlive = minor === 1;
    this.#targetStart = target[0];
    this.#targetEnd = target[1];
    this.#fields = fields;
    this.#hostIndex = hostIndex;
  }

  /** The request-target exactly as sent. */
  get target(): string {
    return this.#text.slice(this.#targetStart, this.#targetEnd);
  }

  /** The first byte of the target (`/` for origin-form), without cutting the string. */
  get targetFirstChar(): number {
    return this.#text.charCodeAt(this.#targetStart);
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
    return this.#text.slice(f[i * 4], f[i * 4 + 1]).toLowerCase();
  }

  /** Field line `i`'s value, without surrounding whitespace. */
  value(i: number): string {
    const f = this.#fields;
    return this.#text.slice(f[i * 4 + 2], f[i * 4 + 3]);
  }

  /**
   * The value of the fields called `name` (any case): one value, or all of them joined with
   * ", " (RFC 9110 §5.3), or null when there is none. Names are compared without cutting them.
   */
  get(name: string): string | null {
    const f = this.#fields, text = this.#text, n = name.length;
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
