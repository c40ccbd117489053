/**
 * Chat rooms on Hono + apprun WebSockets, carried through upgrades: open http://localhost:8080/
 * in two tabs, chat, then reload the server (`npx apprun reload --name chat`, `systemctl
 * restart`, or `apprun upgrade`): the sockets stay open, the rooms, names, counters and history
 * survive, and the "served by" pid changes. Joining a room shows its history once: the page
 * starts its log afresh at each join (the server sends the room's history to each new socket).
 *
 *   npx apprun serve examples/chat.ts --port 8080
 */
import { Hono } from "hono";
import { type ServerWebSocket, upgradeWebSocket, WebSocketUpgradeError } from "../mod.ts";

interface Member {
  room: string;
  name: string;
  /** Messages this member sent, across every generation. */
  sent: number;
}

const members = new Map<ServerWebSocket, Member>();
let history: Record<string, string[]> = {};

function broadcast(room: string, text: string): void {
  const line = JSON.stringify({ text, pid: Deno.pid, at: Date.now() });
  (history[room] ??= []).push(line);
  if (history[room].length > 50) history[room].shift();
  for (const [ws, m] of members) if (m.room === room && ws.readyState === ws.OPEN) ws.send(line);
}

function join(ws: ServerWebSocket, member: Member): void {
  members.set(ws, member);
  ws.onmessage = (ev) => {
    const text = String(ev.data).slice(0, 500);
    member.sent++;
    broadcast(member.room, `${member.name} (#${member.sent}): ${text}`);
  };
  ws.onclose = () => {
    members.delete(ws);
    broadcast(member.room, `${member.name} left`);
  };
}

const app = new Hono();

app.get("/", (c) => c.html(PAGE));

app.get("/ws", (c) => {
  const room = c.req.query("room") || "lobby";
  const name = (c.req.query("name") || "anon").slice(0, 32);
  let upgrade;
  try {
    upgrade = upgradeWebSocket(c.req.raw);
  } catch (err) {
    // Not a valid upgrade: the error carries the answer (400, or 426 naming version 13).
    if (err instanceof WebSocketUpgradeError) return err.response;
    throw err;
  }
  const { socket, response } = upgrade;
  socket.onopen = () => {
    for (const line of history[room] ?? []) socket.send(line);
    join(socket, { room, name, sent: 0 });
    broadcast(room, `${name} joined ${room}`);
  };
  return response;
});

app.get("/pid", (c) => c.text(String(Deno.pid)));

export default app;

// Session hooks: what each socket and the app carry to the next process.
export function onWebSocketHandoff(ws: ServerWebSocket): Member | null {
  return members.get(ws) ?? null;
}

export function onWebSocketResume(ws: ServerWebSocket, state: Member | null): void {
  if (state === null) return ws.close(1000, "no session state");
  join(ws, state);
  ws.send(JSON.stringify({ text: `(resumed by pid ${Deno.pid})`, pid: Deno.pid, at: Date.now() }));
}

export function onAppHandoff(): unknown {
  return { history };
}

export function onAppResume(state: { history?: Record<string, string[]> } | null): void {
  history = state?.history ?? {};
}

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>apprun chat</title>
<style>body{font:15px system-ui;margin:2em;max-width:40em}#log{border:1px solid #ccc;height:20em;overflow:auto;padding:.5em}
#status{color:#070}</style></head>
<body><h1>apprun chat</h1>
<p>Room <input id="room" value="lobby"> name <input id="name" value="guest"> <button id="join">join</button>
<span id="status">not connected</span></p>
<div id="log"></div>
<form id="f"><input id="msg" size="50" autocomplete="off"> <button>send</button></form>
<script>
let ws; const log = document.getElementById("log"); const status = document.getElementById("status");
function add(t){ const d=document.createElement("div"); d.textContent=t; log.append(d); log.scrollTop=log.scrollHeight; }
document.getElementById("join").onclick = () => {
  // The previous socket is done with: its late events must not touch the page (its close
  // would say "closed" under the new connection), and the new one starts with the room's
  // whole history, so the log starts afresh rather than showing it a second time.
  if (ws) { ws.onmessage = ws.onclose = null; ws.close(); }
  log.replaceChildren();
  // By id, not as window.name: that global is the window's own name, not the input.
  const field = (id) => document.getElementById(id).value;
  const q = new URLSearchParams({ room: field("room"), name: field("name") });
  ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws?" + q);
  ws.onopen = () => status.textContent = "connected";
  ws.onmessage = (e) => { const m = JSON.parse(e.data); status.textContent = "connected, served by pid " + m.pid; add(m.text); };
  ws.onclose = (e) => status.textContent = "closed (" + e.code + ")";
};
document.getElementById("f").onsubmit = (e) => { e.preventDefault(); if (ws?.readyState === 1 && msg.value) ws.send(msg.value); msg.value = ""; };
document.getElementById("join").click();
</script></body></html>`;
