/**
 * Unmodified Deno apps under apprun (tests/fixtures/deno_apps/, each written as Deno's or Hono's
 * docs show it, importing nothing from apprun): each is served, and restarted 5 times while 8
 * keep-alive clients load it — under the embedded supervisor and under a real systemd 252 with
 * the units `apprun install` renders. Every request is answered, correctly, on the connection it
 * was sent on; every WebSocket client keeps its connection and gets every numbered message it
 * sent answered exactly once and in order; every SSE client gets every event id once, in order.
 * No hooks anywhere: the sessions live on by replaying their opening requests.
 */
import assert from "node:assert/strict";
import type { HttpResponse } from "../_net.ts";
import { sleep } from "../_poll.ts";
import {
  type CompatApp,
  NumberedWs,
  type Probe,
  restartTimes,
  runHttpLoad,
  SseCounter,
  testUnderBoth,
} from "./_compat.ts";

const RESTARTS = 5;
const CLIENTS = 8;

/** A probe expecting status 200 and exactly `body`. */
function expect(path: string, body: string): Probe {
  return {
    path,
    check(res: HttpResponse) {
      assert.equal(res.status, 200, res.body);
      assert.equal(res.body, body);
    },
  };
}

/** WebSocket clients of a scenario: where, how many, and how an answer to `prefix n` reads. */
interface WsPlan {
  path: string;
  count: number;
  prefix(i: number): string;
  answerOf(i: number, text: string): number | null;
}

/**
 * The scenario every app goes through: load (and sessions) on, 5 restarts, load off; then every
 * count is checked. Returns apprun's log.
 */
async function restartUnderLoad(
  app: CompatApp,
  probes: Probe[],
  sessions: { ws?: WsPlan; ssePath?: string } = {},
): Promise<string> {
  const url = `ws://127.0.0.1:${app.port}`;
  const stop = Promise.withResolvers<void>();
  const load = runHttpLoad(app.port, probes, CLIENTS, stop.promise);
  const plan = sessions.ws;
  const sockets = plan === undefined ? [] : Array.from(
    { length: plan.count },
    (_, i) => new NumberedWs(`${url}${plan.path}`, plan.prefix(i), (t) => plan.answerOf(i, t)),
  );
  const streams = sessions.ssePath === undefined
    ? []
    : [0, 1, 2].map(() => new SseCounter(app.port, sessions.ssePath!));
  try {
    await Promise.all(sockets.map((s) => s.client.opened));
    for (const s of sockets) s.startSending(40);
    for (const s of streams) await s.reach(3);
    const pids = await restartTimes(app, RESTARTS);
    assert.equal(pids.length, RESTARTS + 1);
    await sleep(300);
    stop.resolve();
    const result = await load;
    assert.deepEqual(result.failures, [], "every request answered, right, on its connection");
    assert.equal(result.answered, result.sent);
    assert.ok(result.answered >= CLIENTS * 10, `only ${result.answered} requests answered`);
    for (const [i, s] of sockets.entries()) {
      await s.settle();
      assert.deepEqual(s.client.problems, [], `WebSocket ${i}: ${s.client.messages.slice(-5)}`);
      assert.equal(s.answered, s.sent, `WebSocket ${i}: ${s.sent} sent, ${s.answered} answered`);
      assert.ok(s.sent >= 20, `WebSocket ${i} sent only ${s.sent}`);
    }
    for (const [i, s] of streams.entries()) {
      const last = s.last;
      await s.reach(last + 5);
      assert.deepEqual(s.problems, [], `SSE ${i}`);
      assert.ok(s.last >= last + 5, `SSE ${i} stopped at id ${s.last}`);
    }
    const log = await app.log();
    assert.doesNotMatch(log, /not resumed|not carried|handler failed/);
    console.log(
      `  ${app.manager}: ${result.answered} requests, ` +
        `${sockets.reduce((n, s) => n + s.sent, 0)} WebSocket messages, SSE ids up to ` +
        `${streams.map((s) => s.last).join("/") || "-"}, through ${RESTARTS} restarts`,
    );
    return log;
  } finally {
    stop.resolve();
    await Promise.all(sockets.map((s) => s.close()));
    await Promise.all(streams.map((s) => s.stop()));
  }
}

testUnderBoth("Deno.serve hello", "deno_apps/hello.ts", async (app) => {
  await restartUnderLoad(app, [expect("/", "Hello, World!")]);
});

testUnderBoth("Deno.serve with options and onListen", "deno_apps/options.ts", async (app) => {
  const log = await restartUnderLoad(app, [
    expect("/a/b", "You asked for /a/b"),
    expect("/", "You asked for /"),
  ]);
  // onListen got the address apprun serves on (its listener wins over port 4242), every time.
  const lines = log.match(/Server started at http:\/\/127\.0\.0\.1:(\d+)/g) ?? [];
  assert.equal(lines.length, RESTARTS + 1, log);
  for (const l of lines) assert.ok(l.endsWith(`:${app.port}`), l);
});

testUnderBoth("an import.meta.main-guarded app", "deno_apps/main_guard.ts", async (app) => {
  await restartUnderLoad(app, [
    expect("/?name=ada", "Hello, ada!"),
    expect("/", "Hello, stranger!"),
  ]);
});

testUnderBoth("a JSON API", "deno_apps/json_api.ts", async (app) => {
  await restartUnderLoad(app, [
    {
      path: "/books/1",
      check(res) {
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("content-type"), "application/json");
        assert.deepEqual(JSON.parse(res.body), { id: "1", title: "The Hobbit" });
      },
    },
    {
      method: "POST",
      path: "/books",
      body: '{"title":"Solaris"}',
      check(res) {
        assert.equal(res.status, 201);
        assert.equal(JSON.parse(res.body).title, "Solaris");
      },
    },
    {
      path: "/books/none",
      check(res) {
        assert.equal(res.status, 404);
        assert.deepEqual(JSON.parse(res.body), { error: "not found" });
      },
    },
  ]);
});

testUnderBoth("a WebSocket chat on Deno.upgradeWebSocket", "deno_apps/ws_chat.ts", async (app) => {
  // Every message goes to every client; each client checks its own come back once, in order.
  await restartUnderLoad(app, [expect("/", "a chat: connect with a WebSocket")], {
    ws: {
      path: "/",
      count: 5,
      prefix: (i) => `c${i}:`,
      answerOf: (i, text) => text.startsWith(`c${i}:`) ? Number(text.split(":")[1]) : null,
    },
  });
});

testUnderBoth("a Hono app with hono/deno upgradeWebSocket", "deno_apps/hono_ws.ts", async (app) => {
  await restartUnderLoad(app, [expect("/", "Hello Hono!")], {
    ws: {
      path: "/ws",
      count: 5,
      prefix: () => "",
      answerOf: (_i, text) => {
        const m = /^echo: (\d+)$/.exec(text);
        return m === null ? null : Number(m[1]);
      },
    },
  });
});

testUnderBoth("an SSE clock with a ReadableStream body", "deno_apps/sse_clock.ts", async (app) => {
  await restartUnderLoad(app, [expect("/", "the clock is at /clock")], { ssePath: "/clock" });
});
