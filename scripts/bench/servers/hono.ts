/**
 * Bench app: a Hono route returning JSON from a path parameter and a request header, through
 * `Deno.serve`. Run as is by Deno (the baseline) and, unchanged, by apprun. Port: first argument.
 */
import { Hono } from "hono";

const app = new Hono();
app.get("/users/:id", (c) => c.json({ id: c.req.param("id"), agent: c.req.header("user-agent") }));

Deno.serve({ port: Number(Deno.args[0]), hostname: "127.0.0.1", onListen() {} }, app.fetch);
