/**
 * @module
 * The directory of the control socket must be this user's alone: whoever can write to it can
 * put their own socket in its place and answer `apprun status` or `apprun upgrade` (the default,
 * `/tmp/apprun-UID`, sits in a world-writable directory where anyone may create it first).
 * Creates and checks that directory; owns no fd and never touches the socket itself.
 */
import { SupervisorError } from "./errors.ts";

/**
 * Creates `path` (mode 0700, parents too) unless it exists, then checks it as
 * {@linkcode checkPrivateDir} does. Throws {@linkcode SupervisorError} with one line naming the
 * problem.
 */
export async function ensurePrivateDir(path: string): Promise<void> {
  try {
    await Deno.mkdir(path, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new SupervisorError(`cannot create the control directory ${path}`, { cause: err });
  }
  await checkPrivateDir(path);
}

/**
 * Refuses `path` unless it is a real directory (not a symbolic link) owned by this process's
 * uid, with no permission bit for group or others. Throws {@linkcode SupervisorError}, or
 * `Deno.errors.NotFound` when it does not exist.
 */
export async function checkPrivateDir(path: string): Promise<void> {
  const st = await Deno.lstat(path);
  const refuse = (why: string): never => {
    throw new SupervisorError(`refusing the control directory ${path}: ${why}`);
  };
  if (st.isSymlink) refuse("it is a symbolic link");
  if (!st.isDirectory) refuse("it is not a directory");
  const uid = Deno.uid();
  if (st.uid !== uid) refuse(`it is owned by uid ${st.uid}, not by this user (uid ${uid})`);
  const mode = (st.mode ?? 0) & 0o777;
  if ((mode & 0o077) !== 0) {
    refuse(`its mode ${mode.toString(8).padStart(4, "0")} lets others in (chmod 700 it)`);
  }
}
