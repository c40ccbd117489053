/**
 * A Server-Sent Events clock that keeps ticking through upgrades: open
 * http://localhost:8080/ and reload the server; the stream stays open, the event ids continue
 * without a gap, and the pid that sends them changes.
 *
 *   npx apprun serve examples/clock.ts --port 8080
 */
import { sse, type SSEStream } from "../mod.ts";

const timers = new Map<SSEStream, ReturnType<typeof setInterval>>();

function tick(stream: SSEStream): void {
  let seq = Number(stream.lastEventId || "0");
  const send = () => {
    seq++;
    stream.send({
      id: String(seq),
      data: JSON.stringify({ time: new Date().toISOString(), pid: Deno.pid }),
    });
  };
  timers.set(stream, setInterval(send, 1000));
  stream.onclose = () => {
    clearInterval(timers.get(stream));
    timers.delete(stream);
  };
  send();
}

export default {
  fetch(req: Request): Response {
    const url = new URL(req.url);
    if (url.pathname === "/events") {
      const { stream, response } = sse(req);
      tick(stream);
      return response;
    }
    return new Response(PAGE, { headers: { "content-type": "text/html; charset=utf-8" } });
  },
};

/** Stop ticking here; the next process continues from `stream.lastEventId`. */
export function onSSEHandoff(stream: SSEStream): null {
  clearInterval(timers.get(stream));
  return null;
}

export function onSSEResume(stream: SSEStream): void {
  tick(stream);
}

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>apprun clock</title>
<style>body{font:18px system-ui;margin:2em}</style></head>
<body><h1>apprun clock</h1><p id="t">…</p><p id="p"></p>
<script>
const es = new EventSource("/events");
es.onmessage = (e) => { const m = JSON.parse(e.data);
  document.getElementById("t").textContent = m.time + " (event " + e.lastEventId + ")";
  document.getElementById("p").textContent = "sent by pid " + m.pid; };
es.onerror = () => document.getElementById("p").textContent = "reconnecting…";
</script></body></html>`;
