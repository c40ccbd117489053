/**
 * @module
 * Logging to stderr, one line per event. Under systemd (`JOURNAL_STREAM` set) each line
 * starts with its syslog priority (`<3>` error … `<7>` debug, sd-daemon(3)) so the journal
 * keeps levels; otherwise lines carry a timestamp and the level name.
 */

/** Log levels, most severe first. */
export type LogLevel = "error" | "warn" | "info" | "debug";

const PRIORITY: Record<LogLevel, number> = { error: 3, warn: 4, info: 6, debug: 7 };
const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** A logger with a fixed prefix (e.g. `apprun[1234]`). */
export interface Logger {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
  readonly level: LogLevel;
}

/** Options for {@linkcode createLogger}. */
export interface LoggerOptions {
  level?: LogLevel;
  /** Emit `<N>` priority prefixes (default: when JOURNAL_STREAM is set). */
  isJournal?: boolean;
  /** Text after the level, e.g. "worker". */
  tag?: string;
}

const encoder = new TextEncoder();

/** Parses a level name; unknown names give `undefined`. */
export function parseLogLevel(s: string | undefined): LogLevel | undefined {
  return s === "error" || s === "warn" || s === "info" || s === "debug" ? s : undefined;
}

/** A logger writing synchronously to stderr. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? parseLogLevel(Deno.env.get("APPRUN_LOG")) ?? "info";
  const isJournal = opts.isJournal ?? Deno.env.get("JOURNAL_STREAM") !== undefined;
  const tag = opts.tag ? `${opts.tag}: ` : "";
  const write = (lvl: LogLevel, msg: string) => {
    if (RANK[lvl] > RANK[level]) return;
    // The journal stores each stderr line as its own entry: every line carries the priority.
    const line = isJournal
      ? msg.split("\n").map((l) => `<${PRIORITY[lvl]}>${tag}${l}\n`).join("")
      : `${new Date().toISOString()} ${lvl.padEnd(5)} ${tag}${msg.replaceAll("\n", "\n  ")}\n`;
    try {
      Deno.stderr.writeSync(encoder.encode(line));
    } catch {
      // stderr gone (closed pipe): logging must never take the server down.
    }
  };
  return {
    level,
    error: (m) => write("error", m),
    warn: (m) => write("warn", m),
    info: (m) => write("info", m),
    debug: (m) => write("debug", m),
  };
}

/**
 * apprun's line for an error that ends the process: `apprun: MESSAGE` on stderr (then `detail`,
 * a stack, if given), every line with the error priority `<3>` under the journal so systemd
 * records it as an error.
 */
export function writeFatal(message: string, detail = ""): void {
  const prefix = Deno.env.get("JOURNAL_STREAM") !== undefined ? "<3>" : "";
  const lines = [`apprun: ${message}`, ...(detail ? detail.split("\n") : [])];
  try {
    Deno.stderr.writeSync(encoder.encode(lines.map((l) => `${prefix}${l}\n`).join("")));
  } catch {
    // stderr gone: nothing left to tell.
  }
}
