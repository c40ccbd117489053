/**
 * Bench app for `deno serve --parallel` (the baseline of `throughput.ts --parallel`), which
 * serves a default export only: `BENCH_APP=hello` or `hono`, answering as hello.ts and hono.ts.
 */
import { Hono } from "hono";

const hono = new Hono();
hono.get("/users/:id", (c) => c.json({ id: c.req.param("id"), agent: c.req.header("user-agent") }));

export default Deno.env.get("BENCH_APP") === "hono"
  ? hono
  : { fetch: () => new Response("Hello, World!") };
