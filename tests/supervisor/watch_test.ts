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

Deno.test("a watched file: other files in its directory do not restart; a rename over it does", async () => {
  const dir = await Deno.makeTempDir({ prefix: "apprun-watch-test-" });
  Deno.watchFs(dir).close();
  const app = `${dir}/app.ts`;
  await Deno.writeTextFile(app, "export default 1;\n");
  try {
    await withSupervisor({ watch: [app], watchDebounceMs: 100 }, async ({ sup, log }) => {
      await sup.start();
      // A log written line by line beside the app, and an editor's swap file: no restart.
      for (let i = 0; i < 50; i++) {
        await Deno.writeTextFile(`${dir}/app.log`, `line ${i}\n`, { append: true });
      }
      await Deno.writeTextFile(`${dir}/.app.ts.swp`, "x");
      await sleep(400);
      assert.equal(sup.status().generation, 1, log.text);
      // Saved as editors do: a new file renamed over the old one.
      await Deno.writeTextFile(`${dir}/app.ts.tmp`, "export default 2;\n");
      await Deno.rename(`${dir}/app.ts.tmp`, app);
      await waitUntil(() => sup.status().generation === 2 && sup.state === "ready", "restart");
      assert.match(log.text, /restart \(changed: .*app\.ts\)/);
      // The watch survives the rename: a second save restarts again.
      await Deno.writeTextFile(app, "export default 3;\n");
      await waitUntil(() => sup.status().generation === 3 && sup.state === "ready", "restart");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a watch function is asked for the list again after each restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "apprun-watch-test-" });
  Deno.watchFs(dir).close();
  const [a, b] = [`${dir}/a.ts`, `${dir}/b.ts`];
  await Deno.writeTextFile(a, "1");
  let list = [a];
  let asked = 0;
  const watch = () => (asked++, Promise.resolve(list));
  try {
    await withSupervisor({ watch, watchDebounceMs: 100 }, async ({ sup }) => {
      await sup.start();
      await waitUntil(() => asked === 1, "the first list");
      await Deno.writeTextFile(b, "not watched yet");
      await sleep(300);
      assert.equal(sup.status().generation, 1);
      list = [a, b]; // a.ts now imports b.ts
      await Deno.writeTextFile(a, "2");
      await waitUntil(() => sup.status().generation === 2 && asked === 2, "restart, new list");
      await Deno.writeTextFile(b, "watched now");
      await waitUntil(() => sup.status().generation === 3 && sup.state === "ready", "restart");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
