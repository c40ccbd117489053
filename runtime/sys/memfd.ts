/**
 * @module
 * Sealed memory files: create a memfd, fill it, seal it against change (F_SEAL_WRITE, GROW,
 * SHRINK, SEAL), and read one back after checking its seals. The caller owns every fd.
 */
import { errno, libc, libcMore } from "./libc.ts";
import { E, SysError } from "./errno.ts";
import {
  F_ADD_SEALS,
  F_GET_SEALS,
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  F_SEAL_WRITE,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
} from "./constants.ts";
import { writeAll } from "./fd.ts";

/** Every seal apprun puts on a state memfd. */
export const FULL_SEALS = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL;

/** Creates a memfd holding `bytes`, sealed read-only. The caller owns the fd. */
export function createSealedMemfd(name: string, bytes: Uint8Array): number {
  const cname = new TextEncoder().encode(name + "\0");
  const fd = libcMore().memfd_create(cname, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) throw new SysError("memfd_create", errno(), name);
  try {
    writeAll(fd, bytes);
    if (libc.fcntl(fd, F_ADD_SEALS, FULL_SEALS) < 0) {
      throw new SysError("fcntl", errno(), "F_ADD_SEALS");
    }
    return fd;
  } catch (err) {
    libc.close(fd);
    throw err;
  }
}

/** The seals set on an fd (0 for files that cannot be sealed). */
export function getSeals(fd: number): number {
  const rc = libc.fcntl(fd, F_GET_SEALS, 0);
  return rc < 0 ? 0 : rc;
}

/** Reads a whole memfd from offset 0, up to `maxBytes`. Does not close it. */
export function readMemfd(fd: number, maxBytes: number): Uint8Array {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const buf = new Uint8Array(Math.min(1 << 20, maxBytes - total + 1));
    const rc = libcMore().pread(fd, buf, BigInt(buf.byteLength), BigInt(total));
    if (rc < 0) throw new SysError("pread", errno(), `memfd ${fd}`);
    if (rc === 0) break;
    chunks.push(buf.subarray(0, rc));
    total += rc;
    if (total > maxBytes) {
      throw new SysError("pread", E.EFBIG, `memfd larger than ${maxBytes} bytes`);
    }
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}
