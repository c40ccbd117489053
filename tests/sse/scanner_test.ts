/**
 * @module
 * Tests of `EventStreamScanner` (runtime/sse/scanner.ts), the socket-free follower of an event
 * stream as WHATWG HTML §9.2.6 has a client read it: event boundaries and the last event id,
 * whatever the line endings and however the bytes are split.
 */
import assert from "node:assert/strict";
import { EventStreamScanner } from "../../runtime/sse/scanner.ts";

const enc = new TextEncoder();

/** Pushes `text` one byte at a time, then whole: both must agree. */
function scan(
  text: string,
  lastEventId = "",
): { whole: EventStreamScanner; bytes: EventStreamScanner } {
  const whole = new EventStreamScanner(lastEventId);
  whole.push(enc.encode(text));
  const bytes = new EventStreamScanner(lastEventId);
  for (const b of enc.encode(text)) bytes.push(Uint8Array.of(b));
  assert.equal(bytes.lastEventId, whole.lastEventId, JSON.stringify(text));
  assert.equal(bytes.isAtBoundary, whole.isAtBoundary, JSON.stringify(text));
  return { whole, bytes };
}

Deno.test("EventStreamScanner takes the id at the end of its event, with any line ending", () => {
  for (const eol of ["\n", "\r\n", "\r"]) {
    const { whole } = scan(`id: 1${eol}data: a${eol}${eol}id: 2${eol}data: b${eol}`);
    assert.equal(whole.lastEventId, "1", "event 2 has not ended");
    assert.equal(whole.isAtBoundary, false);
    const done = scan(`id: 1${eol}data: a${eol}${eol}id: 2${eol}data: b${eol}${eol}`).whole;
    assert.equal(done.lastEventId, "2");
    assert.equal(done.isAtBoundary, true);
  }
});

Deno.test("EventStreamScanner reads id fields as §9.2.6 does", () => {
  assert.equal(scan("id:7\n\n").whole.lastEventId, "7", "no space");
  assert.equal(scan("id:  7\n\n").whole.lastEventId, " 7", "only one space is dropped");
  assert.equal(scan("id\n\n", "5").whole.lastEventId, "", "a bare id clears it");
  assert.equal(scan("id: a\0b\n\n", "5").whole.lastEventId, "5", "an id with NUL is ignored");
  assert.equal(scan("idx: 9\n\n", "5").whole.lastEventId, "5", "another field");
  assert.equal(scan(": id: 9\n\n", "5").whole.lastEventId, "5", "a comment");
  assert.equal(scan("data: x\n\n", "5").whole.lastEventId, "5", "an event without id keeps it");
  assert.equal(scan("\uFEFFid: 3\n\n").whole.lastEventId, "3", "a BOM before the first line");
  assert.equal(scan("id: é\n\n").whole.lastEventId, "é", "UTF-8");
});

Deno.test("EventStreamScanner: at a boundary only between events; comments are inside one", () => {
  assert.equal(new EventStreamScanner().isAtBoundary, true, "before anything");
  assert.equal(scan(": keep-alive\n").whole.isAtBoundary, false);
  assert.equal(scan(": keep-alive\n\n").whole.isAtBoundary, true);
  assert.equal(scan("data: x").whole.isAtBoundary, false, "a line not ended");
  assert.equal(scan("data: x\r\n\r").whole.isAtBoundary, true, "a CR ends the blank line");
});

Deno.test("EventStreamScanner.push(untilBoundary) stops right after the first boundary", () => {
  const s = new EventStreamScanner();
  s.push(enc.encode("id: 1\ndata: a"));
  const rest = enc.encode("\n\nid: 2\ndata: b\n\n");
  assert.equal(s.push(rest, true), 2);
  assert.equal(s.lastEventId, "1");
  assert.equal(s.isAtBoundary, true);
  const crlf = new EventStreamScanner();
  crlf.push(enc.encode("id: 1\r\ndata: a\r\n"));
  assert.equal(crlf.push(enc.encode("\r\nid: 2\r\n"), true), 2, "the CRLF's LF is taken too");
  assert.equal(crlf.isAtBoundary, true);
  assert.equal(crlf.push(enc.encode("id: 2\r\ndata: b\r\n\r\nid: 3"), true), 18);
  assert.equal(crlf.lastEventId, "2");
});

Deno.test("EventStreamScanner: an id line too long to keep makes the id unknown", () => {
  const long = "x".repeat(5000);
  const s = scan(`id: ${long}\n\n`).whole;
  assert.equal(s.isIdKnown, false);
  const after = scan(`id: ${long}\n\nid: 8\n\n`).whole;
  assert.equal(after.isIdKnown, true);
  assert.equal(after.lastEventId, "8");
  assert.equal(scan(`data: ${long}\n\n`).whole.isIdKnown, true, "a long data line is fine");
});
