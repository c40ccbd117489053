/**
 * @module
 * One extra event loop of `apprun serve --parallel` (docs/design.md, "Several loops"): the
 * entry of a Web Worker started by worker/loops.ts. It installs apprun's `Deno.serve` on a
 * `WorkerApp` of its own, imports the app (its own module instance: `import.meta.main` is false
 * here), gives its servers the main thread's listeners (the same fd numbers: fds are
 * process-wide), and then does what the main thread asks (the messages in loops.ts): serve a
 * share of what a bundle carried, harvest its connections for a handoff, stop.
 *
 * Owns its server and every connection fd it serves; a harvest's fds become the main thread's
 * once posted (this loop's server, and with it its epoll fd, is closed before). Never owns a
 * listener: the main thread opened them and closes them. Sends no sd_notify and watches no
 * signal: those are the main thread's.
 */
import { createLogger, type Logger } from "../log.ts";
import type { Listener } from "../listen.ts";
import { ListenError } from "../listen.ts";
import type { Server } from "../server.ts";
import { describeError } from "../errors.ts";
import { installDenoServe, installDenoUpgradeWebSocket, type ListenRequest } from "../deno/mod.ts";
import { type ListenerSource, WorkerApp } from "./app.ts";
import { harvest, warmUpHandoff } from "./hand_off.ts";
import { keepAliveOnAppErrors } from "./process.ts";
import { startServer, WARM_UP_AFTER_MS } from "./serving.ts";
import type { LoopReply, LoopRequest } from "./loops.ts";
import type { WorkerOptions } from "./options.ts";

/** The main thread's listeners, server by server: this loop's servers take the same ones. */
class LoopListeners implements ListenerSource {
  readonly #bindings: Listener[][];
  #next = 0;

  constructor(bindings: Listener[][]) {
    this.#bindings = bindings;
  }

  take(_request: ListenRequest): Listener {
    const listeners = this.#bindings[this.#next++];
    if (listeners === undefined) {
      throw new ListenError(
        "ERR_LISTEN_LOOP",
        `the app asks for more servers in this loop than in the main one (${this.#bindings.length})`,
      );
    }
    return listeners[0];
  }

  rest(): Listener[] {
    return this.#bindings[0]?.slice(1) ?? [];
  }
}

const scope = globalThis as unknown as {
  postMessage(message: LoopReply): void;
  onmessage: ((e: MessageEvent<LoopRequest>) => void) | null;
};

let log: Logger;
let opts: WorkerOptions;
let app: WorkerApp;
let server: Server | null = null;
let stopWarmUp = () => {};

async function load(request: Extract<LoopRequest, { t: "init" }>): Promise<void> {
  opts = request.opts;
  // The app's own arguments, as on the main thread (whose `Deno.args` apprun may have cut).
  Object.defineProperty(Deno, "args", { value: request.args, configurable: true });
  log = createLogger({ level: opts.logLevel, tag: `loop ${request.index}` });
  app = new WorkerApp({
    path: opts.handler,
    pool: new LoopListeners(request.bindings),
    log,
    isMainModule: false,
    // The app shutting its servers down here stops nothing else: the main loop's decide.
    onAllStopped: () => {},
  });
  keepAliveOnAppErrors(log, app);
  installDenoServe(app, true); // "Listening on …" is the main loop's to say
  installDenoUpgradeWebSocket();
  try {
    app.useModule(await import(request.app));
  } catch (err) {
    app.failLoad(err);
  }
  try {
    await app.loaded;
    scope.postMessage({ t: "loaded" });
  } catch (err) {
    scope.postMessage({ t: "failed", message: describeError(err) });
  }
}

async function handle(request: LoopRequest): Promise<LoopReply | null> {
  switch (request.t) {
    case "init":
      await load(request);
      return null;
    case "resume": {
      const s = startServer({ opts, log, notifier: null, app }, request.generation, request.share);
      server = s;
      // The handoff's code warmed up a second after, as on the main loop: not in the start, nor
      // in the next handoff's pause.
      stopWarmUp = s.loop.every(WARM_UP_AFTER_MS, () => {
        stopWarmUp();
        warmUpHandoff().catch((err) =>
          log.warn(`cannot load the handoff's state codec: ${describeError(err)}`)
        );
      });
      return { t: "serving" };
    }
    case "harvest": {
      if (server === null) return { t: "harvest", harvest: null };
      stopWarmUp();
      const h = await harvest(server, request.drainTimeoutMs, log);
      await server.closed; // its epoll fd goes before the fds are the main thread's
      server = null;
      return { t: "harvest", harvest: h };
    }
    case "stop-accepting":
      server?.stopAccepting();
      return { t: "not-accepting" };
    case "shutdown":
      stopWarmUp();
      await server?.shutdown();
      return { t: "stopped" };
  }
}

scope.onmessage = (e) => {
  handle(e.data).then(
    (reply) => reply !== null && scope.postMessage(reply),
    (err) => scope.postMessage({ t: "failed", message: describeError(err) }),
  );
};
