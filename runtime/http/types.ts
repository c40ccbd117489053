/**
 * @module
 * The handler contract, as `deno serve` defines it: `fetch(request, info)` returns a Response
 * or a promise of one. `info` carries the peer address and a promise settled when the
 * response has been written.
 */

/** The peer of a connection, as `Deno.ServeHandlerInfo.remoteAddr` reports it. */
export type RemoteAddr =
  | { transport: "tcp"; hostname: string; port: number }
  | { transport: "unix"; path: string };

/** Second argument of a handler. */
export interface ServeHandlerInfo {
  readonly remoteAddr: RemoteAddr;
  /** Settles when the response is fully written (or the connection failed). */
  readonly completed: Promise<void>;
  /** apprun extension: the name of the listener the connection came in on (FileDescriptorName=). */
  readonly listener: string;
}

/** A request handler. */
export type FetchHandler = (
  request: Request,
  info: ServeHandlerInfo,
) => Response | Promise<Response>;
