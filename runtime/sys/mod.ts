/**
 * @module
 * apprun's system layer: typed wrappers over libc through Deno FFI. The rest of apprun
 * imports from here only; pointers never leave this folder.
 */
export * from "./constants.ts";
export * from "./errno.ts";
export * from "./fd.ts";
export * from "./fdpass.ts";
export * from "./file_lock.ts";
export * from "./memfd.ts";
export * from "./process.ts";
export * from "./seqpacket.ts";
export * from "./socket.ts";
export { errno, libc } from "./libc.ts";
