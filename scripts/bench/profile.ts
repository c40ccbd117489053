// deno-lint-ignore-file no-explicit-any
/**
 * Samples a running apprun (or any Deno process started with --inspect) through the V8
 * inspector for a few seconds and prints the functions with the most self time.
 *
 *   deno run -A scripts/bench/profile.ts [inspector-port=9229] [seconds=4]
 */
const port = Number(Deno.args[0] ?? 9229);
const seconds = Number(Deno.args[1] ?? 4);
const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
await new Promise((r) => ws.onopen = r);
let id = 0;
const pending = new Map<number, (v: any) => void>();
ws.onmessage = (e) => {
  const msg = JSON.parse(e.data);
  if (msg.id && pending.has(msg.id)) pending.get(msg.id)!(msg.result);
};
const call = (method: string, params: object = {}): Promise<Record<string, any>> =>
  new Promise((resolve) => {
    const n = ++id;
    pending.set(n, resolve);
    ws.send(JSON.stringify({ id: n, method, params }));
  });
await call("Profiler.enable");
await call("Profiler.setSamplingInterval", { interval: 100 });
await call("Profiler.start");
await new Promise((r) => setTimeout(r, seconds * 1000));
const { profile } = await call("Profiler.stop");
ws.close();
const self = new Map<string, number>();
const dt = new Map<number, number>();
profile.samples.forEach((s: number, i: number) =>
  dt.set(s, (dt.get(s) ?? 0) + (profile.timeDeltas[i] ?? 0))
);
let total = 0;
for (const node of profile.nodes) {
  const f = node.callFrame;
  const key = `${f.functionName || "(anon)"} ${f.url.split("/").slice(-2).join("/")}:${
    f.lineNumber + 1
  }`;
  const t = dt.get(node.id) ?? 0;
  total += t;
  self.set(key, (self.get(key) ?? 0) + t);
}
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 45);
for (const [k, v] of rows) console.log(`${(100 * v / total).toFixed(1).padStart(5)}%  ${k}`);
