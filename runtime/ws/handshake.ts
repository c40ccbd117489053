/**
 * @module
 * The server's side of the opening handshake (RFC 6455 §4.2): decides whether a parsed
 * HTTP request is a valid WebSocket upgrade, and if so which headers the 101 carries; if not,
 * which status (400 or 426) and why. Owns `Sec-WebSocket-Accept` and subprotocol selection.
 * Does not parse HTTP, write the response or touch sockets; extensions are never accepted.
 */
import { WS_GUID, WS_VERSION } from "./constants.ts";
import { sha1 } from "./_sha1.ts";

/**
 * Reads one header field, repeated fields joined by ", " (like `Headers`). Names are always
 * asked in lower case, so a map keyed by lower-cased names serves as well.
 */
export interface HeaderLookup {
  get(name: string): string | null;
}

/** What {@link validateHandshake} needs from the request. */
export interface HandshakeOptions {
  /** The request method, as sent (methods are case-sensitive, RFC 9110 §9.1). */
  method: string;
  /** The request line's HTTP-version, `"HTTP/1.1"` (a bare `"1.1"` is accepted too). */
  httpVersion: string;
  headers: HeaderLookup;
  /** Subprotocols the application speaks, most preferred first. Default: none. */
  protocols?: readonly string[];
}

/** The request is a valid upgrade: answer `101 Switching Protocols` with `headers`. */
export interface HandshakeAccepted {
  ok: true;
  status: 101;
  /** Response headers in order: Upgrade, Connection, Sec-WebSocket-Accept[, -Protocol]. */
  headers: [string, string][];
  /** The subprotocol chosen, or null when none was offered or none fits. */
  protocol: string | null;
}

/** Which rule of RFC 6455 §4.2.1 the request broke. */
export type HandshakeFailure =
  | "method"
  | "http-version"
  | "host"
  | "upgrade"
  | "connection"
  | "key"
  | "version"
  | "protocol";

/** The request is not a valid upgrade: answer `status` with `headers`, then stop. */
export interface HandshakeRejected {
  ok: false;
  status: 400 | 426;
  reason: HandshakeFailure;
  /** One line for logs and the response body. */
  message: string;
  /** Extra response headers (426 names the version we speak, §4.4). */
  headers: [string, string][];
}

export type HandshakeResult = HandshakeAccepted | HandshakeRejected;

/**
 * Validates a client's opening handshake and builds the server's answer.
 * https://www.rfc-editor.org/rfc/rfc6455#section-4.2.1 (steps numbered as there).
 */
export function validateHandshake(options: HandshakeOptions): HandshakeResult {
  const { method, httpVersion, headers } = options;
  // The three rules Deno checks come first, with Deno's own messages (ext/http, Deno 2.9), so
  // that an app written for `Deno.upgradeWebSocket` sees the same TypeError for the same
  // request. 3. Upgrade: a list containing the "websocket" keyword, case-insensitive.
  if (!hasToken(headers.get("upgrade"), "websocket")) {
    return reject(400, "upgrade", "Invalid Header: 'upgrade' header must contain 'websocket'");
  }
  // 4. Connection: a list containing the "Upgrade" token, case-insensitive.
  if (!hasToken(headers.get("connection"), "upgrade")) {
    return reject(400, "connection", "Invalid Header: 'connection' header must contain 'Upgrade'");
  }
  // 5. (first half) Sec-WebSocket-Key present.
  const key = headers.get("sec-websocket-key")?.trim() ?? null;
  if (key === null) {
    return reject(400, "key", "Invalid Header: 'sec-websocket-key' header must be set");
  }
  // What RFC 6455 asks and Deno lets through. 1. "An HTTP/1.1 or higher GET request".
  if (method !== "GET") {
    return reject(400, "method", `Invalid WebSocket upgrade: method ${method} cannot upgrade`);
  }
  if (!isHttp11OrHigher(httpVersion)) {
    return reject(400, "http-version", `Invalid WebSocket upgrade: ${httpVersion} cannot upgrade`);
  }
  // 2. A Host header field (RFC 9112 §3.2 already requires it of HTTP/1.1).
  if (!headers.get("host")?.trim()) {
    return reject(400, "host", "Invalid WebSocket upgrade: missing Host");
  }
  // 6. Sec-WebSocket-Version: 13; otherwise 426 naming the version we speak (§4.4). Checked
  //    before the key's form so that a client of another version learns what to retry with.
  if (headers.get("sec-websocket-version")?.trim() !== WS_VERSION) {
    return {
      ok: false,
      status: 426,
      reason: "version",
      message: `Sec-WebSocket-Version must be ${WS_VERSION}`,
      headers: [["Sec-WebSocket-Version", WS_VERSION]],
    };
  }
  // 5. Sec-WebSocket-Key: base64 of 16 bytes.
  if (!isValidKey(key)) {
    return reject(
      400,
      "key",
      "Invalid WebSocket upgrade: Sec-WebSocket-Key is not base64 of 16 bytes",
    );
  }
  // 7. Origin is the application's to judge (§10.2); 8–9. subprotocol, extensions.
  const protocol = selectSubprotocol({
    offered: parseSubprotocols(headers.get("sec-websocket-protocol")),
    supported: options.protocols ?? [],
  });
  // Sec-WebSocket-Extensions is ignored on purpose: the server's /extensions/ list may be
  // empty (§4.2.2 step 4) and the response header is optional (step 5.6); a server sends
  // only extensions it accepts (§9.1). apprun negotiates no permessage-deflate, whose
  // compression context would have to survive a handoff.
  const response: [string, string][] = [
    ["Upgrade", "websocket"],
    ["Connection", "Upgrade"],
    ["Sec-WebSocket-Accept", computeAcceptKey(key)],
  ];
  if (protocol !== null) response.push(["Sec-WebSocket-Protocol", protocol]);
  return { ok: true, status: 101, headers: response, protocol };
}

function reject(status: 400, reason: HandshakeFailure, message: string): HandshakeRejected {
  return { ok: false, status, reason, message, headers: [] };
}

/**
 * Whether a request asks for a WebSocket at all (`Upgrade` names websocket), before it is
 * validated: a router's cheap first test. "Not a WebSocket request" is not an error.
 */
export function isWebSocketUpgrade(headers: HeaderLookup): boolean {
  return hasToken(headers.get("upgrade"), "websocket");
}

/**
 * `base64(SHA-1(key + GUID))`, synchronous. https://www.rfc-editor.org/rfc/rfc6455#section-4.2.2
 * (step 5.4). A small SHA-1 of our own rather than `node:crypto`, whose import would slow every
 * worker start (see _sha1.ts).
 */
export function computeAcceptKey(key: string): string {
  const digest = sha1(new TextEncoder().encode(key + WS_GUID));
  return btoa(String.fromCharCode(...digest));
}

/** Base64 of 16 bytes is 22 significant characters and "==" (RFC 4648 §4). */
const KEY_PATTERN = /^[A-Za-z0-9+/]{22}==$/;

function isValidKey(key: string): boolean {
  return KEY_PATTERN.test(key);
}

/** A list header (`#token`, RFC 9110 §5.6.1) has `token` in it, case-insensitively. */
function hasToken(value: string | null, token: string): boolean {
  if (value === null) return false;
  for (const item of value.split(",")) {
    if (item.trim().toLowerCase() === token) return true;
  }
  return false;
}

function isHttp11OrHigher(version: string): boolean {
  const match = /^(?:HTTP\/)?(\d)\.(\d)$/.exec(version);
  if (match === null) return false;
  const major = Number(match[1]);
  return major > 1 || (major === 1 && Number(match[2]) >= 1);
}

/** The subprotocols a `Sec-WebSocket-Protocol` value offers, in the client's order. */
export function parseSubprotocols(value: string | null): string[] {
  if (value === null) return [];
  return value.split(",").map((item) => item.trim()).filter((item) => item !== "");
}

/** What {@link selectSubprotocol} chooses between. */
export interface SubprotocolOptions {
  /** What the client offered, as {@link parseSubprotocols} returns it. */
  offered: readonly string[];
  /** What the server speaks, most preferred first. */
  supported: readonly string[];
}

/**
 * The server's most preferred subprotocol that the client offered (exact, case-sensitive
 * match), or null: then the response carries no `Sec-WebSocket-Protocol` (§4.2.2 steps 4
 * and 5.5: /subprotocol/ may be null).
 */
export function selectSubprotocol(options: SubprotocolOptions): string | null {
  for (const protocol of options.supported) {
    if (options.offered.includes(protocol)) return protocol;
  }
  return null;
}
