/** Baseline: Deno.serve hello world on the port given as the first argument. */
Deno.serve(
  { port: Number(Deno.args[0]), hostname: "127.0.0.1", onListen() {} },
  () => new Response("Hello, World!"),
);
