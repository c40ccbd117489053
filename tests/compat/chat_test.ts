/**
 * The broadcast chat of Deno's docs (tests/fixtures/deno_apps/ws_chat.ts: a `clients` set filled
 * in `onopen`, no hooks) with 20 clients through restarts, under the supervisor and a real
 * systemd: every client gets every broadcast exactly once — those sent before, during and after
 * each restart. After a restart the new process's set is empty until the replayed sessions'
 * `open` events fill it again, so a broadcast reaching all 20 proves the registry was rebuilt.
 */
import assert from "node:assert/strict";
import { sleep } from "../_poll.ts";
import { Client, testUnderBoth } from "./_compat.ts";

const CLIENTS = 20;

testUnderBoth(
  "chat: 20 clients get every broadcast through restarts",
  "deno_apps/ws_chat.ts",
  async (app) => {
    const clients = Array.from(
      { length: CLIENTS },
      () => new Client(`ws://127.0.0.1:${app.port}/`),
    );
    const sent: string[] = [];
    /** Every client sends `label i`; resolves once every client has every one of them. */
    const round = async (label: string) => {
      for (const [i, c] of clients.entries()) {
        sent.push(`${label} ${i}`);
        c.ws.send(`${label} ${i}`);
      }
      const deadline = Date.now() + 10_000;
      while (
        !clients.every((c) => c.messages.filter((m) => m.startsWith(`${label} `)).length >= CLIENTS)
      ) {
        if (Date.now() > deadline) {
          const counts = clients.map((c) =>
            c.messages.filter((m) => m.startsWith(`${label} `)).length
          );
          throw new Error(`round ${label}: broadcasts received per client: ${counts}`);
        }
        await sleep(20);
      }
    };
    try {
      await Promise.all(clients.map((c) => c.opened));
      await round("before");
      for (let r = 1; r <= 2; r++) {
        const restarted = app.restart();
        await sleep(30);
        await round(`during${r}`); // sent while the old process hands off (or just before)
        await restarted;
        await round(`after${r}`);
      }
      await sleep(200);
      for (const [i, c] of clients.entries()) {
        assert.deepEqual(
          [...c.messages].sort(),
          [...sent].sort(),
          `client ${i}: each broadcast once`,
        );
        assert.equal(c.ws.readyState, WebSocket.OPEN, `client ${i} still connected`);
        assert.deepEqual(c.problems, [], `client ${i}: no close or error event`);
      }
      console.log(`  ${app.manager}: ${CLIENTS} clients × ${sent.length} broadcasts, 2 restarts`);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  },
);
