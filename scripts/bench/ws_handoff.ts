/**
 * WebSocket handoff: N open sessions (default 1000 and 10000, Deno's own WebSocket client) on
 * apprun under its supervisor; one probe session sends messages back to back through a restart.
 * The pause is the probe's gap between the last echo from the old pid and the first from the
 * new one. Messages/s: 50 sessions ping-ponging for 2 s before and after the restart.
 *
 *   deno run -A scripts/bench/ws_handoff.ts [--counts 1000,10000]
 */
import { parseArgs } from "node:util";
import { fmt, freePort, openWs, wsEcho } from "./_lib.ts";
import { startSupervised } from "../e2e/supervised.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { counts: { type: "string", default: "1000,10000" } },
});

async function rate(sockets: WebSocket[], ms: number): Promise<number> {
  let count = 0;
  const end = performance.now() + ms;
  await Promise.all(sockets.map(async (ws) => {
    for (let k = 0; performance.now() < end; k++) {
      await wsEcho(ws, k);
      count++;
    }
  }));
  return count / (ms / 1000);
}

for (const n of values.counts!.split(",").map(Number)) {
  const port = freePort();
  const sup = await startSupervised({
    handler: "tests/fixtures/ws_counter.ts",
    port,
    logLevel: "warn",
  });
  const sockets: WebSocket[] = [];
  try {
    for (let i = 0; i < n; i += 500) {
      sockets.push(
        ...await Promise.all(Array.from({ length: Math.min(500, n - i) }, () => openWs(port))),
      );
    }
    const movers = sockets.slice(0, 50);
    const before = await rate(movers, 2000);
    const probe = sockets[sockets.length - 1];
    const oldPid = await wsEcho(probe, 0);
    let lastOld = 0, firstNew = 0;
    const probing = (async () => {
      for (let k = 1; firstNew === 0; k++) {
        const pid = await wsEcho(probe, k);
        if (pid === oldPid) lastOld = performance.now();
        else firstNew = performance.now();
      }
    })();
    await new Promise((r) => setTimeout(r, 50));
    sup.reload();
    await probing;
    const after = await rate(movers, 2000);
    const closed = sockets.filter((ws) => ws.readyState !== WebSocket.OPEN).length;
    console.log(
      `${String(n).padStart(6)} sessions: pause ${fmt(firstNew - lastOld)} ms; ` +
        `messages/s before ${fmt(before)}, after ${fmt(after)}; sessions closed ${closed}`,
    );
  } finally {
    for (const ws of sockets) ws.close();
    await sup.stop();
  }
}
