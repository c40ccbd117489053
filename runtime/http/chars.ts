/**
 * @module
 * Byte classes from RFC 9110 §5.6.2 (tchar), §5.5 (field-vchar, obs-text) and RFC 3986 (what
 * a request-target may hold), as 256-entry lookup tables. Pure data.
 */

function table(pred: (c: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = pred(c) ? 1 : 0;
  return t;
}

const TCHAR_EXTRA = "!#$%&'*+-.^_`|~";

/** tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
export const IS_TCHAR = table((c) =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) ||
  TCHAR_EXTRA.includes(String.fromCharCode(c))
);

/** field-value bytes: VCHAR, obs-text, SP, HTAB (RFC 9110 §5.5). CR, LF, NUL and CTLs are not. */
export const IS_FIELD_CHAR = table((c) => c === 0x09 || (c >= 0x20 && c !== 0x7f));

/** request-target bytes: visible ASCII, no space or CTL (RFC 9112 §3.2). obs-text is refused. */
export const IS_TARGET_CHAR = table((c) => c > 0x20 && c < 0x7f);

/**
 * Host field bytes: uri-host [ ":" port ] (RFC 9110 §7.2) — a reg-name (unreserved,
 * sub-delims, pct-encoded), an IPv4 address, or an IP-literal in brackets.
 */
export const IS_HOST_CHAR = table((c) =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) ||
  "-._~!$&'()*+,;=:%[]".includes(String.fromCharCode(c))
);

/** Whether `s` is a non-empty token. */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 255 || IS_TCHAR[c] === 0) return false;
  }
  return true;
}
