/**
 * @module
 * Checks for unit-file option values. Each check takes the value and the option's name as the
 * caller spelled it and throws {@linkcode UnitOptionError} naming both; none renders anything.
 * Some are stricter than systemd where that keeps the rendered text simple to read and quote
 * (no whitespace in paths, unit-name-safe fd names).
 */
import { UnitOptionError } from "./errors.ts";

/** Throws the one error units/ throws. */
export function fail(option: string, reason: string): never {
  throw new UnitOptionError(option, reason);
}

/** The first C0 control or DEL in `value` (a newline would end the setting), or -1. */
function firstControl(value: string, isTabAllowed: boolean): number {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && !(isTabAllowed && c === 0x09)) || c === 0x7f) return c;
  }
  return -1;
}

/** A string with no control characters (tab allowed only when `isTabAllowed`). */
export function checkText(
  value: unknown,
  option: string,
  { isTabAllowed = false, isEmptyAllowed = true } = {},
): string {
  if (typeof value !== "string") fail(option, `must be a string, got ${typeof value}`);
  if (!isEmptyAllowed && value === "") fail(option, "must not be empty");
  const bad = firstControl(value, isTabAllowed);
  if (bad >= 0) {
    const code = bad.toString(16).padStart(2, "0");
    fail(option, `contains a control character (0x${code}); unit files cannot carry it`);
  }
  return value;
}

/**
 * A unit's base name (no `.service`/`.socket`): systemd's unit name characters minus the
 * template `@` and the escape `\`, starting with a letter or digit, at most 200 characters
 * (the full name, with suffixes, must stay under systemd's 255).
 */
export function checkUnitBaseName(value: unknown, option: string): string {
  const name = checkText(value, option, { isEmptyAllowed: false });
  if (name.length > 200) fail(option, `is ${name.length} characters; at most 200`);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/.test(name)) {
    fail(
      option,
      `${JSON.stringify(name)} is not a unit name: use letters, digits and "_.:-", ` +
        "starting with a letter or digit",
    );
  }
  return name;
}

/** An absolute, normalized path with no whitespace: `/a/b`, not `a`, `/a/../b` or `/a b`. */
export function checkAbsolutePath(value: unknown, option: string): string {
  const path = checkText(value, option, { isEmptyAllowed: false });
  if (!path.startsWith("/")) fail(option, `${JSON.stringify(path)} is not an absolute path`);
  if (/\s/.test(path)) fail(option, `${JSON.stringify(path)} contains whitespace`);
  if (path.length > 4095) fail(option, "is longer than PATH_MAX (4095)");
  const segments = path.split("/").slice(1);
  const isNormalized = path === "/" ||
    segments.every((s) => s !== "" && s !== "." && s !== "..");
  if (!isNormalized) {
    fail(option, `${JSON.stringify(path)} is not normalized (no "//", ".", ".." or trailing /)`);
  }
  return path;
}

/** An integer in [min, max]. */
export function checkInteger(value: unknown, option: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    fail(option, `must be an integer, got ${JSON.stringify(value)}`);
  }
  if (value < min || value > max) fail(option, `${value} is out of range ${min}–${max}`);
  return value;
}

/** A TCP port, 1–65535. */
export function checkPort(value: unknown, option: string): number {
  return checkInteger(value, option, 1, 65535);
}

/**
 * A duration in seconds: finite, ≥ `min` (> 0 when `isPositive`), to the millisecond,
 * at most a year (anything longer is a mistake in units of some kind).
 */
export function checkSeconds(
  value: unknown,
  option: string,
  { isPositive = true } = {},
): number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    fail(option, `must be a number of seconds, got ${JSON.stringify(value)}`);
  }
  if (value < 0 || (isPositive && value === 0)) {
    fail(option, `${value} must be ${isPositive ? "greater than 0" : "0 or more"} seconds`);
  }
  if (Math.abs(value * 1000 - Math.round(value * 1000)) > 1e-6) {
    fail(option, `${value} is finer than a millisecond`);
  }
  if (value > 365 * 24 * 3600) fail(option, `${value} seconds is more than a year`);
  return value;
}

/** An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`. */
export function checkEnvName(value: unknown, option: string): string {
  const name = checkText(value, option, { isEmptyAllowed: false });
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    fail(option, `${JSON.stringify(name)} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)`);
  }
  return name;
}

/**
 * A socket's `FileDescriptorName=`. systemd allows any printable ASCII but `:`; we take
 * letters, digits and `_.-` (≤ 64) so that a socket unit can be named after it, and keep
 * `apprun-` for the fds apprun stores itself (the handoff bundle).
 */
export function checkFdName(value: unknown, option: string): string {
  const name = checkText(value, option, { isEmptyAllowed: false });
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
    fail(option, `${JSON.stringify(name)} is not an fd name: 1–64 of letters, digits, "_.-"`);
  }
  if (name.startsWith("apprun-")) {
    fail(option, `${JSON.stringify(name)}: names starting "apprun-" are apprun's own fdstore`);
  }
  return name;
}

/** A user or group name (POSIX portable, as useradd takes it) that is not root. */
export function checkAccountName(value: unknown, option: string): string {
  const name = checkText(value, option, { isEmptyAllowed: false });
  if (!/^[a-z_][a-z0-9_-]{0,30}$/.test(name)) {
    fail(option, `${JSON.stringify(name)} is not a user/group name ([a-z_][a-z0-9_-]{0,30})`);
  }
  if (name === "root") fail(option, "apprun does not render services that run as root");
  return name;
}

/** An octal file mode like `0660`; returned with four digits. */
export function checkMode(value: unknown, option: string): string {
  const mode = checkText(value, option, { isEmptyAllowed: false });
  if (!/^0?[0-7]{3}$/.test(mode)) fail(option, `${JSON.stringify(mode)} is not a mode like 0660`);
  return mode.padStart(4, "0");
}
