/**
 * Bench app: hello world through `Deno.serve`. Run as is by Deno (the baseline) and, unchanged,
 * by apprun (`apprun serve hello.ts --port P`: its Deno.serve is apprun's). Port: first argument.
 */
Deno.serve(
  { port: Number(Deno.args[0]), hostname: "127.0.0.1", onListen() {} },
  () => new Response("Hello, World!"),
);
