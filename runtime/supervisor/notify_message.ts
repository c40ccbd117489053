/**
 * @module
 * Parses one sd_notify datagram into its lines the way systemd 252 does, and the values those
 * lines carry (FDNAME=, EXTEND_TIMEOUT_USEC=, ERRNO=, STATUS=). Byte-driven and socket-free:
 * it never sees an fd. Lines stay latin-1 strings so byte checks (FDNAME=) are exact.
 *
 * systemd (manager_dispatch_notify_fd, strv_split_newlines, extract_first_word with no flags):
 * 1. At most NOTIFY_BUFFER_MAX (4096) bytes; longer is refused.
 * 2. A NUL byte anywhere but last is refused.
 * 3. Lines are separated by "\n" or "\r"; runs of separators count as one (no empty lines).
 * 4. A backslash takes the next byte literally (so "a\b" is "ab", "\\" is "\", and "\<LF>"
 *    joins two lines); a backslash as the last byte makes the whole message invalid.
 * Lookups take the first line with a prefix (strv_find_startswith), so duplicates are ignored.
 */
import { E } from "../sys/mod.ts";

/** systemd's NOTIFY_BUFFER_MAX (PIPE_BUF). */
export const NOTIFY_BUFFER_MAX = 4096;
/** systemd's FDNAME_MAX. */
export const FDNAME_MAX = 255;

/** The lines of a message, or why it is refused. */
export type SplitResult = { tags: string[] } | { refused: string };

/** Steps 1–4 of the module header. */
export function splitNotifyMessage(data: Uint8Array): SplitResult {
  if (data.length > NOTIFY_BUFFER_MAX) {
    return { refused: `it exceeds the maximum size (${NOTIFY_BUFFER_MAX} bytes)` };
  }
  const end = data.length > 0 && data[data.length - 1] === 0 ? data.length - 1 : data.length;
  if (data.subarray(0, end).includes(0)) return { refused: "it has embedded NUL bytes" };
  const tags: string[] = [];
  let word: number[] | null = null;
  for (let i = 0; i < end; i++) {
    const c = data[i];
    if (c === 0x5c) {
      if (i + 1 >= end) return { refused: "it ends with a lone backslash" };
      (word ??= []).push(data[++i]);
    } else if (c === 0x0a || c === 0x0d) {
      if (word !== null) tags.push(latin1(word));
      word = null;
    } else (word ??= []).push(c);
  }
  if (word !== null) tags.push(latin1(word));
  return { tags };
}

function latin1(bytes: number[]): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode(...bytes.slice(i, i + 8192));
  }
  return s;
}

/** The value of the first line starting with `prefix` (e.g. "FDNAME="), or undefined. */
export function findTag(tags: readonly string[], prefix: string): string | undefined {
  const line = tags.find((t) => t.startsWith(prefix));
  return line === undefined ? undefined : line.slice(prefix.length);
}

/**
 * fdname_is_valid(): ≤ 255 bytes of ASCII 0x20–0x7e except ':'. The empty name is valid
 * (systemd stores it, and LISTEN_FDNAMES then has an empty field).
 */
export function isValidFdName(name: string): boolean {
  if (name.length > FDNAME_MAX) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c >= 0x7f || c === 0x3a) return false;
  }
  return true;
}

/**
 * An EXTEND_TIMEOUT_USEC= / WATCHDOG_USEC= value (safe_atou64) in µs, or null when it does not
 * parse. Values beyond 2^53 are clamped (they mean "practically forever" either way).
 */
export function parseUsec(value: string): number | null {
  if (!/^\d+$/.test(value)) return null;
  const n = BigInt(value);
  if (n > 0xffffffffffffffffn) return null;
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
}

/** parse_errno(): an errno name ("EPIPE") or number 0–4095; null otherwise. */
export function parseErrno(value: string): number | null {
  if (/^\d+$/.test(value)) {
    const n = Number(value);
    return n <= 4095 ? n : null;
  }
  const named = (E as Record<string, number>)[value];
  return named ?? null;
}

/** A STATUS= value (latin-1 bytes) as text, or null when it is not valid UTF-8. */
export function decodeStatus(value: string): string | null {
  const bytes = Uint8Array.from(value, (ch) => ch.charCodeAt(0));
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}
