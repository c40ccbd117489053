/**
 * @module
 * The worker: the apprun process that serves (under systemd, a socket activator, or apprun's
 * own supervisor). Other areas import only from here.
 */
export { runWorker, type WorkerOptions } from "./run.ts";
