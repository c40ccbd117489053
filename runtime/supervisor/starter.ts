/**
 * @module
 * A supervisor started by hand must not outlive, unnoticed, the process that started it: a
 * shell, `npx` (npm, then `sh -c`, then apprun), a test runner. Two watches, since the parent
 * is not always the one that matters: PR_SET_PDEATHSIG gets SIGTERM sent to us the moment the
 * parent dies (so the supervisor stops, with its worker, as on any SIGTERM); and the ancestors
 * in our process group — the job the shell started, such as npm above its `sh -c` — are
 * checked twice a second through /proc (pid and start time, so a reused pid is not mistaken
 * for the one we knew). A supervisor that must outlive its shell is detached on purpose
 * (`setsid -f`) or run by systemd. Owns one interval timer; the returned function ends it.
 */
import type { Logger } from "../log.ts";
import { dieWithParent, SIGNALS } from "../sys/mod.ts";

/** One process as /proc/PID/stat tells it. */
interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  pgrp: number;
  /** Clock ticks after boot: with the pid, names one process for good. */
  startTime: string;
}

/** Reads /proc/PID/stat; null when the process is gone. */
export function readProcStat(pid: number | "self"): ProcStat | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
  // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses; it ends at the last ')'.
  const close = text.lastIndexOf(")");
  const fields = text.slice(close + 2).split(" ");
  return {
    pid: Number(text.slice(0, text.indexOf(" "))),
    comm: text.slice(text.indexOf("(") + 1, close),
    ppid: Number(fields[1]),
    pgrp: Number(fields[2]),
    startTime: fields[19],
  };
}

/** The processes to outlive no longer than: the parent, then its ancestors in our group. */
function startersOf(self: ProcStat): ProcStat[] {
  const out: ProcStat[] = [];
  for (let pid = self.ppid; pid > 1 && out.length < 32;) {
    const p = readProcStat(pid);
    if (p === null || (out.length > 0 && p.pgrp !== self.pgrp)) break;
    out.push(p);
    pid = p.ppid;
  }
  return out;
}

/**
 * Watches the process(es) that started this one; calls `onGone` once, with a line naming the
 * one that is gone, when an ancestor goes (the parent's death also sends SIGTERM). Returns
 * the function that stops watching.
 */
export function followStarter(log: Logger, onGone: (line: string) => void): () => void {
  const self = readProcStat("self");
  if (self === null) return () => {};
  const starters = startersOf(self);
  if (starters.length === 0) return () => {}; // already orphaned: started detached on purpose
  dieWithParent(SIGNALS.SIGTERM, starters[0].pid);
  log.debug(`following ${starters.map((p) => `${p.comm} (pid ${p.pid})`).join(", ")}`);
  const timer = setInterval(() => {
    const gone = starters.find((p) => readProcStat(p.pid)?.startTime !== p.startTime);
    if (gone === undefined) return;
    clearInterval(timer);
    onGone(`${gone.comm} (pid ${gone.pid}), which started the supervisor, is gone`);
  }, 500);
  return () => clearInterval(timer);
}
