/**
 * `watch`: a change under a watched directory restarts the worker once the changes have
 * been quiet for the debounce period; a burst of changes is one restart.
 */
import assert from "node:assert/strict";
import { withSupervisor } from "./_harness.ts";
import { sleep, waitUntil } from "../_poll.ts";

Deno.test("a file change under a watched directory restarts the worker (debounced)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "apprun-watch-test-" });
  // Deno keeps one inotify thread (inotify, epoll and eventfd fds) for the whole process once
  // a watcher was made: make it before the harness takes its fd snapshot.
  Deno.watchFs(dir).close();
  try {
    await withSupervisor({ watch: [dir], watchDebounceMs: 150 }, async ({ sup, log }) => {
      const first = await sup.start();
      for (let i = 0; i < 5; i++) {
        await Deno.writeTextFile(`${dir}/file-${i}.ts`, `export default ${i};\n`);
        await sleep(20); // a burst: changes closer together than the debounce period
      }
      await waitUntil(() => sup.status().generation === 2 && sup.state === "ready", "restart");
      await sleep(400); // a window in which a second restart must not come
      assert.equal(sup.status().generation, 2, "a burst of changes is one restart");
      assert.notEqual(sup.status().pid, first.pid);
      assert.match(log.text, /restart \(changed: .*file-\d\.ts/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
