/**
 * @module
 * How many fds the service manager will keep for us (FileDescriptorStoreMax=). systemd ≥ 254
 * and apprun's supervisor say it in `$FDSTORE`; systemd 252 does not, and its default is 0, in
 * which case `FDSTORE=1` is dropped with only a line in the manager's log — a handoff into
 * nothing. So when `$FDSTORE` is absent, ask the manager for our unit's value (unit name from
 * /proc/self/cgroup, `systemctl show`), in the background so start-up does not wait for it.
 */
import type { Logger } from "./log.ts";

/** -1: unknown (assume the store works, as a hand-written unit with a store would). */
export type FdStoreCapacity = number;

/** The unit this process runs in, from its cgroup path, or null. */
export function ownUnit(cgroupText: string): string | null {
  let best: string | null = null;
  for (const line of cgroupText.split("\n")) {
    const path = line.split(":").slice(2).join(":");
    for (const part of path.split("/")) if (part.endsWith(".service")) best = part;
    if (best !== null && line.startsWith("0::")) break;
  }
  return best;
}

/** `$FDSTORE` when set. */
export function fdstoreFromEnv(): FdStoreCapacity | null {
  const v = Deno.env.get("FDSTORE");
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : null;
}

/** Asks systemd for FileDescriptorStoreMax of our unit; -1 when it cannot tell. */
export async function queryFdStoreCapacity(
  log: Logger,
  timeoutMs = 3000,
): Promise<FdStoreCapacity> {
  const fromEnv = fdstoreFromEnv();
  if (fromEnv !== null) return fromEnv;
  let unit: string | null = null;
  try {
    unit = ownUnit(await Deno.readTextFile("/proc/self/cgroup"));
  } catch {
    return -1;
  }
  if (unit === null) return -1;
  const runtimeDir = Deno.env.get("XDG_RUNTIME_DIR");
  let isUser = false;
  if (runtimeDir) {
    try {
      isUser = Deno.statSync(`${runtimeDir}/systemd/private`).isSocket === true;
    } catch {
      isUser = false;
    }
  }
  const args = [
    ...(isUser ? ["--user"] : []),
    "show",
    "-p",
    "FileDescriptorStoreMax",
    "--value",
    unit,
  ];
  try {
    const child = new Deno.Command("systemctl", {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      signal: AbortSignal.timeout(timeoutMs),
    });
    const out = await child.output();
    const text = new TextDecoder().decode(out.stdout).trim();
    if (out.code === 0 && /^\d+$/.test(text)) return Number(text);
  } catch (err) {
    log.debug(
      `cannot ask systemd for FileDescriptorStoreMax of ${unit}: ${(err as Error).message}`,
    );
  }
  return -1;
}

/** Logs what the capacity means for handoffs; `needed` fds go into the store at each one. */
export function explainCapacity(capacity: FdStoreCapacity, needed: number, log: Logger): void {
  if (capacity === 0) {
    log.warn(
      "FileDescriptorStoreMax=0: restarts will drain and close connections instead of handing " +
        "them off (set FileDescriptorStoreMax= in the service, or use `apprun install`)",
    );
  } else if (capacity > 0 && capacity < needed) {
    log.error(
      `FileDescriptorStoreMax=${capacity} is too small: a handoff stores ${needed} fds ` +
        `(the bundle and ${needed - 1} own listeners); connections would be lost at restart`,
    );
  }
}
