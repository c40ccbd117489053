/**
 * A real browser through a restart: headless Chromium (Debian's /usr/bin/chromium, driven by
 * playwright-core) opens examples/chat.ts's page in two tabs served by apprun under its
 * supervisor, chats, the server restarts (SIGHUP), and each page's one WebSocket stays open —
 * no close event, no second socket — while messages keep flowing both ways. A screenshot goes
 * to .test-out/sessions/ (CI keeps it).
 */
import assert from "node:assert/strict";
import { ROOT } from "../_proc.ts";
import { OUT_DIR, superviseFixture } from "./_sessions.ts";
import type { BrowserContext, Page } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Why the browser test cannot run here, or null. */
async function browserUnavailable(): Promise<string | null> {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    return `${CHROMIUM} is not installed (apt-get install -y chromium)`;
  }
  try {
    await import("playwright-core");
  } catch (err) {
    return `playwright-core is not installed (npm ci): ${(err as Error).message}`;
  }
  return null;
}

const reason = await browserUnavailable();
if (reason) console.log(`skip: browser test: ${reason}`);

/**
 * Runs in the page before its own script: records every WebSocket it opens and every close
 * event, so the test can tell "the same socket stayed open" from "it reconnected".
 */
const WATCH_SOCKETS = `
  window.__sockets = [];
  window.__closes = [];
  const Native = WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      window.__sockets.push(this);
      this.addEventListener("close", (e) => window.__closes.push(e.code));
    }
  };`;

interface SocketWatch {
  sockets: number;
  readyStates: number[];
  closes: number[];
}

function watch(page: Page): Promise<SocketWatch> {
  return page.evaluate(`({
    sockets: window.__sockets.length,
    readyStates: window.__sockets.map((s) => s.readyState),
    closes: window.__closes,
  })`);
}

/** Types `text` into the page's form and sends it. */
async function say(page: Page, text: string): Promise<void> {
  await page.fill("#msg", text);
  await page.press("#msg", "Enter");
}

/** Waits until the chat log of `page` shows a line containing `text`. */
async function waitForLine(page: Page, text: string): Promise<void> {
  // Page-side code as a string: it runs in the page (DOM types are not this file's).
  await page.waitForFunction(
    `[...document.querySelectorAll("#log div")].some((d) => d.textContent.includes(${
      JSON.stringify(text)
    }))`,
    undefined,
    { timeout: 10_000 },
  );
}

/** Runs `fn` with a fresh headless Chromium profile; closes the browser and removes it after. */
async function withChromium(fn: (context: BrowserContext) => Promise<void>): Promise<void> {
  const { chromium } = await import("playwright-core");
  const profile = await Deno.makeTempDir({ prefix: "apprun-chromium-" });
  let context: BrowserContext | undefined;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
    });
    await fn(context);
  } finally {
    await context?.close();
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

Deno.test({
  name: "examples/chat.ts in headless Chromium: the page's socket stays open through a restart",
  ignore: reason !== null,
  async fn() {
    await using sup = await superviseFixture(`${ROOT}/examples/chat.ts`);
    await withChromium(async (context) => {
      await context.addInitScript(WATCH_SOCKETS);
      const base = `http://127.0.0.1:${sup.port}/`;
      const [alice, bob] = [await context.newPage(), await context.newPage()];
      for (const [page, name] of [[alice, "alice"], [bob, "bob"]] as const) {
        await page.goto(base);
        await page.waitForFunction(
          `document.getElementById("status").textContent !== "not connected"`,
        );
        // Rejoin under a name (the page joined as "guest" on load).
        await page.fill("#name", name);
        await page.click("#join");
        // Regression (examples/chat.ts): the page read `name.value`, which is window.name,
        // so everyone joined as "undefined".
        await waitForLine(page, `${name} joined lobby`);
        // The socket opened on load was closed by the rejoin (the page's own close()).
        await page.waitForFunction("window.__closes.length === 1");
      }
      await say(alice, "hello before");
      await waitForLine(bob, "alice (#1): hello before");
      const watched = [await watch(alice), await watch(bob)];
      for (const w of watched) assert.deepEqual(w.readyStates, [3, 1]);
      const before = sup.pid;
      const r = await sup.restart();
      assert.notEqual(r.pid, before);
      await waitForLine(alice, `(resumed by pid ${r.pid})`);
      await waitForLine(bob, `(resumed by pid ${r.pid})`);
      // After the restart: both directions, and the per-member counter carried over.
      await say(alice, "hello after");
      await waitForLine(bob, "alice (#2): hello after");
      await say(bob, "reply after");
      await waitForLine(alice, "bob (#1): reply after");
      assert.match(await alice.textContent("#status") ?? "", new RegExp(`served by pid ${r.pid}$`));
      for (const [i, page] of [alice, bob].entries()) {
        // The same socket, still open: no close event since, no reconnect.
        assert.deepEqual(await watch(page), watched[i]);
      }
      await Deno.mkdir(OUT_DIR, { recursive: true });
      const shot = `${OUT_DIR}/chat-after-restart.png`;
      await alice.screenshot({ path: shot, fullPage: true });
      assert.ok((await Deno.stat(shot)).size > 1000, "screenshot written");
      console.log(`chat: 2 tabs kept their sockets through pid ${before} → ${r.pid}; ${shot}`);
    });
  },
});

Deno.test({
  name: "examples/chat.ts regression: joining a room shows its history once, not a second time",
  ignore: reason !== null,
  async fn() {
    await using sup = await superviseFixture(`${ROOT}/examples/chat.ts`);
    await withChromium(async (context) => {
      const page = await context.newPage();
      await page.goto(`http://127.0.0.1:${sup.port}/`);
      await waitForLine(page, "guest joined lobby"); // the page joins on load
      await say(page, "said before the rejoin");
      await waitForLine(page, "said before the rejoin");
      // The user picks a name and joins: the server sends the room's history to the new
      // socket; the page used to append it under what it already showed.
      await page.fill("#name", "carol");
      await page.click("#join");
      await waitForLine(page, "carol joined lobby");
      const lines: string[] = await page.evaluate(
        `[...document.querySelectorAll("#log div")].map((d) => d.textContent)`,
      );
      const count = (text: string) => lines.filter((l) => l.includes(text)).length;
      assert.equal(count("said before the rejoin"), 1, lines.join("\n"));
      assert.equal(count("guest joined lobby"), 1, lines.join("\n"));
      // The old socket's close does not overwrite the new one's status.
      await page.waitForTimeout(300);
      assert.match(await page.textContent("#status") ?? "", /^connected/);
    });
  },
});
