/**
 * @module
 * systemd unit-file syntax: quoting command-line words and environment assignments, escaping
 * specifiers, and writing time spans. Pure string work on values that `_validate.ts` already
 * checked (no newlines or other control characters reach here, tab aside).
 */

/** `%` starts a specifier in most settings (systemd.unit(5) "SPECIFIERS"); `%%` is a `%`. */
export function escapeSpecifiers(value: string): string {
  return value.replaceAll("%", "%%");
}

/** Backslash, double quote and tab as C escapes, for the inside of a `"…"` word. */
function escapeInQuotes(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\t", "\\t");
}

// Characters that never need quoting in a command line word.
const PLAIN_WORD = /^[A-Za-z0-9_@%$+=:,./-]+$/;

/**
 * One word of `ExecStart=` (systemd.service(5) "COMMAND LINES"): words split at whitespace
 * unless quoted; C escapes are decoded; `$VAR`/`${VAR}` expand (`$$` is a `$`); `%` is a
 * specifier (`%%`); a lone `;` would end the command. Words that are not plain get double
 * quotes, so `""`, `";"` and `"a b"` come through as themselves.
 */
export function quoteExecWord(word: string): string {
  const escaped = escapeSpecifiers(word).replaceAll("$", () => "$$");
  if (PLAIN_WORD.test(word)) return escaped;
  return `"${escapeInQuotes(escaped)}"`;
}

/**
 * One `Environment=` assignment (systemd.exec(5)): always quoted, C escapes decoded, `%`
 * expanded as a specifier; no `$` expansion there, so `$` stays as it is.
 */
export function quoteEnvironment(name: string, value: string): string {
  return `"${escapeInQuotes(escapeSpecifiers(`${name}=${value}`))}"`;
}

/**
 * A time span (systemd.time(7)) from seconds: whole seconds as `30s`, anything finer in
 * milliseconds (`1500ms`), the unit files' own precision being microseconds.
 */
export function formatSeconds(seconds: number): string {
  if (Number.isInteger(seconds)) return `${seconds}s`;
  return `${Math.round(seconds * 1000)}ms`;
}
