/**
 * @module
 * HTTP protocol errors and their one wire answer: each `HttpErrorReason` maps to exactly one
 * status code here. Parsers throw these; the connection turns them into a response + close.
 */
import { AppRunError } from "../errors.ts";

/** Why a peer's request was refused. */
export type HttpErrorReason =
  | "bad-request-line"
  | "bad-version"
  | "unsupported-version"
  | "uri-too-long"
  | "bad-header"
  | "obs-fold"
  | "headers-too-large"
  | "too-many-headers"
  | "missing-host"
  | "duplicate-host"
  | "bad-content-length"
  | "duplicate-content-length"
  | "content-length-with-transfer-encoding"
  | "bad-transfer-encoding"
  | "unsupported-transfer-encoding"
  | "bad-chunk"
  | "body-too-large"
  | "expectation-failed"
  | "header-timeout"
  | "body-timeout"
  | "incomplete-body";

/** RFC 9110 §15 status for each reason. */
const STATUS: Record<HttpErrorReason, number> = {
  "bad-request-line": 400,
  "bad-version": 400,
  "unsupported-version": 505, // RFC 9110 §15.6.6
  "uri-too-long": 414, // RFC 9110 §15.5.15
  "bad-header": 400,
  "obs-fold": 400, // RFC 9112 §5.2
  "headers-too-large": 431, // RFC 6585 §5
  "too-many-headers": 431,
  "missing-host": 400, // RFC 9112 §3.2
  "duplicate-host": 400,
  "bad-content-length": 400, // RFC 9112 §6.3 (5)
  "duplicate-content-length": 400,
  "content-length-with-transfer-encoding": 400, // RFC 9112 §6.3 (3)
  "bad-transfer-encoding": 400, // RFC 9112 §6.3 (4)
  "unsupported-transfer-encoding": 501, // RFC 9112 §6.1
  "bad-chunk": 400, // RFC 9112 §7.1
  "body-too-large": 413, // RFC 9110 §15.5.14
  "expectation-failed": 417, // RFC 9110 §10.1.1
  "header-timeout": 408, // RFC 9110 §15.5.9
  "body-timeout": 408,
  "incomplete-body": 400,
};

/** A request that breaks RFC 9112 or apprun's limits. */
export class HttpError extends AppRunError {
  override name = "HttpError";
  readonly reason: HttpErrorReason;
  readonly status: number;
  constructor(reason: HttpErrorReason, detail: string) {
    super("ERR_HTTP_PROTOCOL", `${reason}: ${detail}`);
    this.reason = reason;
    this.status = STATUS[reason];
  }
}

/** Reason phrases for status lines (RFC 9110 §15). */
export const REASON_PHRASES: Record<number, string> = {
  100: "Continue",
  101: "Switching Protocols",
  200: "OK",
  201: "Created",
  202: "Accepted",
  203: "Non-Authoritative Information",
  204: "No Content",
  205: "Reset Content",
  206: "Partial Content",
  300: "Multiple Choices",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  411: "Length Required",
  412: "Precondition Failed",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  416: "Range Not Satisfiable",
  417: "Expectation Failed",
  421: "Misdirected Request",
  422: "Unprocessable Content",
  426: "Upgrade Required",
  428: "Precondition Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};
