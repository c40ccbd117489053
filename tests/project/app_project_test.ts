/**
 * An app in its own project, outside this repository, depends on apprun the way the ecosystem
 * expects — and its own project applies to it, as with `deno run` in its directory:
 * - npm: a package.json with `hono` and `apprun` (the tarball `npm pack` makes) as dependencies;
 *   `npx apprun serve main.ts` runs the installed JavaScript build, `import { Hono } from "hono"`
 *   and `import { sse } from "apprun"` resolve from the app's node_modules, and a reload keeps a
 *   keep-alive connection.
 * - deno.json: an import map entry for apprun's mod.ts, no node_modules at all.
 */
import assert from "node:assert/strict";
import { Proc, ROOT, spawn } from "../_proc.ts";
import { exchange, GET, RawClient } from "../_net.ts";

async function run(cmd: string, args: string[], cwd: string): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd, stdin: "null" }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `${cmd} ${args.join(" ")} failed:\n${text}`);
  return text;
}

async function tempProject(): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempDir({ prefix: "apprun-project-" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

async function stop(proc: Proc): Promise<void> {
  proc.kill("SIGTERM");
  await proc.wait();
}

Deno.test({
  name: "project: an npm app with hono and apprun as dependencies serves through `npx apprun`",
  // npm pack bundles dist/ (scripts/build.sh) and npm install copies the deno package: slow.
  sanitizeResources: false,
  async fn() {
    await using dir = await tempProject();
    await run("npm", ["pack", "--silent", "--pack-destination", dir.path], ROOT);
    const tarball = [...Deno.readDirSync(dir.path)].find((e) => e.name.endsWith(".tgz"))!.name;
    const app = `${dir.path}/app`;
    await Deno.mkdir(app);
    await Deno.writeTextFile(
      `${app}/package.json`,
      JSON.stringify({
        name: "myapp",
        private: true,
        type: "module",
        dependencies: { hono: "4.13.19", apprun: `file:../${tarball}` },
      }),
    );
    await Deno.writeTextFile(
      `${app}/main.ts`,
      `import { Hono } from "hono";
import { sse } from "apprun";
const app = new Hono();
app.get("/", (c) => c.text(\`hono \${Deno.pid}\`));
app.get("/events", (c) => {
  const { stream, response } = sse(c.req.raw);
  stream.send({ data: "one", id: "1" });
  stream.close();
  return response;
});
export default app;
`,
    );
    await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline"], app);
    const proc = spawn(`${app}/node_modules/.bin/apprun`, [
      ...["serve", "main.ts", "--port", "0", "--host", "127.0.0.1"],
    ], { cwd: app });
    try {
      const port = Number((await proc.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/))[1]);
      const client = await RawClient.connect(port);
      await client.write(GET("/"));
      const first = await client.readResponse();
      assert.match(first.body, /^hono \d+$/);
      const events = await exchange(port, GET("/events"));
      assert.match(events.body, /id: 1\ndata: one\n\n/);
      proc.kill("SIGHUP");
      await proc.waitFor(/generation 2 ready/);
      await client.write(GET("/"));
      const second = await client.readResponse();
      client.close();
      assert.match(second.body, /^hono \d+$/);
      assert.notEqual(second.body, first.body, "a new process answers on the same connection");
    } finally {
      await stop(proc);
    }
  },
});

Deno.test("project: a deno.json app imports apprun through its import map", async () => {
  await using dir = await tempProject();
  await Deno.writeTextFile(
    `${dir.path}/deno.json`,
    JSON.stringify({ imports: { apprun: `${ROOT}/mod.ts` } }),
  );
  await Deno.writeTextFile(
    `${dir.path}/main.ts`,
    `import { APPRUN_VERSION } from "apprun";
if (import.meta.main) {
  Deno.serve({ port: 8000 }, () => new Response(\`apprun \${APPRUN_VERSION}\`));
}
`,
  );
  const proc = spawn(`${ROOT}/bin/apprun`, [
    ...["serve", "main.ts", "--no-supervisor", "--port", "0", "--host", "127.0.0.1"],
  ], { cwd: dir.path });
  try {
    const port = Number((await proc.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/))[1]);
    const r = await exchange(port, GET("/"));
    assert.match(r.body, /^apprun \d+\.\d+\.\d+/);
  } finally {
    await stop(proc);
  }
});
