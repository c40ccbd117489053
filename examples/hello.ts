/**
 * The smallest apprun handler: `npx apprun serve examples/hello.ts --port 8080`.
 */
export default {
  fetch(req: Request): Response {
    const url = new URL(req.url);
    if (url.pathname === "/pid") return new Response(`${Deno.pid}\n`);
    return new Response("Hello, World!");
  },
};
