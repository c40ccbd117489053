/**
 * @module
 * What each sd_notify line does, in the order systemd 252 applies them (manager.c
 * manager_dispatch_notify_fd, then service.c service_notify_message):
 * 1. BARRIER=1 anywhere: the message is dropped and its fds closed — closing the pipe is the
 *    answer the sender waits for; it must be the only line and carry exactly one fd.
 * 2. NotifyAccess=exec: a sender that is neither the main pid nor the control process (a
 *    reload command) is ignored; without a reload running this is NotifyAccess=main.
 * 3. MAINPID=, READY=1, STOPPING=1, STATUS=, ERRNO=, EXTEND_TIMEOUT_USEC=,
 *    WATCHDOG=1|trigger, WATCHDOG_USEC=, then FDSTOREREMOVE=1 or else FDSTORE=1 (+ FDNAME=,
 *    FDPOLL=0). An invalid FDNAME= on FDSTORE=1 is ignored and the fds are stored as "stored".
 * 4. fds not taken by FDSTORE=1 are closed ("extra auxiliary fds").
 * Decides, never acts on processes: every effect goes through {@linkcode NotifyTarget}. Owns the
 * fds of the datagram it is given until it hands them to the store or closes them.
 */
import type { Logger } from "../log.ts";
import { closeFd } from "../sys/mod.ts";
import type { FdStore } from "./fdstore.ts";
import { decodeStatus, findTag, isValidFdName, parseErrno, parseUsec } from "./notify_message.ts";
import type { NotifyDatagram } from "./notify_socket.ts";

/** The supervisor as the notify handler sees it. */
export interface NotifyTarget {
  readonly log: Logger;
  /** The worker's pid, or null while none runs. */
  mainPid(): number | null;
  /** The control process's pid (a reload command), or null while none runs. */
  controlPid(): number | null;
  /** MAINPID= from `sender` (the main or the control process). */
  onMainPid(pid: number, sender: number): void;
  readonly store: FdStore;
  /** Logs `message` only the first time `key` is seen. */
  warnOnce(key: string, message: string): void;
  onReady(): void;
  onStopping(): void;
  onStatus(text: string, sender: number): void;
  onErrno(errno: number): void;
  onExtendTimeout(usec: number): void;
  onWatchdogPing(): void;
  onWatchdogTrigger(): void;
  onWatchdogUsec(usec: number): void;
}

/** Applies one accepted datagram (steps 1–4). Takes ownership of `msg.fds`. */
export function dispatchNotify(msg: NotifyDatagram, target: NotifyTarget): void {
  const { log } = target;
  const { tags, pid } = msg;
  let fds = msg.fds;
  const closeRest = (why: string) => {
    if (fds.length === 0) return;
    log.warn(`notify: closed ${fds.length} fd(s) from pid ${pid}: ${why}`);
    for (const fd of fds) closeFd(fd);
    fds = [];
  };
  const has = (line: string) => tags.includes(line);

  // 1.
  if (has("BARRIER=1")) {
    if (tags.length !== 1) {
      log.warn(`notify: BARRIER=1 from pid ${pid} came with other lines: all ignored`);
    } else if (fds.length !== 1) {
      log.warn(`notify: BARRIER=1 from pid ${pid} carried ${fds.length} fds instead of 1`);
    }
    for (const fd of fds) closeFd(fd);
    return;
  }
  // 2.
  const mainPid = target.mainPid();
  if (mainPid === null) {
    log.warn(`notify: message from pid ${pid} ignored: no worker is running`);
    return closeRest("attached to an ignored message");
  }
  const controlPid = target.controlPid();
  if (pid !== mainPid && pid !== controlPid) {
    target.warnOnce(
      `pid:${pid}`,
      `notify: messages from pid ${pid} are ignored: reception is only permitted for the ` +
        `main pid ${mainPid}${
          controlPid
            ? ` and the control pid ${controlPid} (NotifyAccess=exec)`
            : " (NotifyAccess=main)"
        }`,
    );
    return closeRest("attached to a message from a pid that is not the worker");
  }
  log.debug(`notify: from pid ${pid}: ${tags.join(", ")}`);

  // 3.
  const newMainPid = findTag(tags, "MAINPID=");
  if (newMainPid !== undefined) {
    const n = /^[1-9]\d{0,9}$/.test(newMainPid) ? Number(newMainPid) : NaN;
    if (Number.isNaN(n)) log.warn(`notify: cannot parse MAINPID=${newMainPid}: ignored`);
    else target.onMainPid(n, pid);
  }
  if (has("READY=1")) target.onReady();
  if (has("STOPPING=1")) target.onStopping();
  const status = findTag(tags, "STATUS=");
  if (status !== undefined) {
    const text = decodeStatus(status);
    if (text === null) log.warn("notify: STATUS= is not UTF-8 clean: ignored");
    else target.onStatus(text, pid);
  }
  const errno = findTag(tags, "ERRNO=");
  if (errno !== undefined) {
    const n = parseErrno(errno);
    if (n === null) log.warn(`notify: cannot parse ERRNO=${errno}: ignored`);
    else target.onErrno(n);
  }
  const extend = findTag(tags, "EXTEND_TIMEOUT_USEC=");
  if (extend !== undefined) {
    const usec = parseUsec(extend);
    if (usec === null) log.warn(`notify: cannot parse EXTEND_TIMEOUT_USEC=${extend}: ignored`);
    else if (usec > 0) target.onExtendTimeout(usec);
  }
  const watchdog = findTag(tags, "WATCHDOG=");
  if (watchdog === "1") target.onWatchdogPing();
  else if (watchdog === "trigger") target.onWatchdogTrigger();
  else if (watchdog !== undefined) log.warn(`notify: WATCHDOG=${watchdog} is invalid: ignored`);
  const watchdogUsec = findTag(tags, "WATCHDOG_USEC=");
  if (watchdogUsec !== undefined) {
    const usec = parseUsec(watchdogUsec);
    if (usec === null) log.warn(`notify: cannot parse WATCHDOG_USEC=${watchdogUsec}: ignored`);
    else target.onWatchdogUsec(usec);
  }
  const fdName = findTag(tags, "FDNAME=");
  if (has("FDSTOREREMOVE=1")) {
    if (fdName === undefined || !isValidFdName(fdName)) {
      log.warn("notify: FDSTOREREMOVE=1 without a valid FDNAME=: ignored");
    } else target.store.remove(fdName);
  } else if (has("FDSTORE=1")) {
    let name = fdName;
    if (name !== undefined && !isValidFdName(name)) {
      log.warn(
        `notify: FDNAME=${JSON.stringify(name)} is invalid (≤ 255 printable ASCII, no ':'): ` +
          `ignored, the fds are stored as "stored" (systemd does the same)`,
      );
      name = undefined;
    }
    if (fds.length > 0) target.store.add(fds, name ?? "stored", !has("FDPOLL=0"));
    fds = [];
  }
  // 4.
  closeRest("attached to a message that does not store them (no FDSTORE=1)");
}
