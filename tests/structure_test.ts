/**
 * The dependencies between apprun's areas (docs/design.md, "Areas and their dependencies"),
 * read from the import statements of every source file: each area imports only what the table
 * allows, imports into a folder go through its `mod.ts`, and no two areas depend on each other.
 * Tests are exempt from the `mod.ts` rule (they test modules where they live).
 */
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** Folders under runtime/ with a public face (`mod.ts`). */
const FOLDERS = [
  "sys",
  "io",
  "http",
  "handoff",
  "sessions",
  "ws",
  "sse",
  "deno",
  "supervisor",
  "worker",
  "upgrade",
];

/** Top-level runtime files any area may use. */
const LEAVES = [
  "errors",
  "log",
  "defaults",
  "version",
  "notify",
  "listen",
  "hooks",
  "handler",
  "fdstore_capacity",
  "state_machine",
  "args",
];

/** What each area may import (besides the leaves, and itself). */
const ALLOWED: Record<string, string[]> = {
  sys: [],
  io: ["sys"],
  http: ["io", "sys"],
  handoff: ["sys"],
  sessions: ["io", "http", "handoff", "sys"],
  ws: ["sessions", "http", "io", "handoff", "sys"],
  sse: ["sessions", "http", "io", "handoff", "sys"],
  deno: ["http", "ws"],
  supervisor: ["io", "sys"],
  server: ["io", "http", "sessions", "ws", "sse", "handoff", "sys"],
  worker: [
    "server",
    "io",
    "http",
    "sessions",
    "ws",
    "sse",
    "deno",
    "handoff",
    "supervisor",
    "sys",
  ],
  upgrade: ["supervisor", "sys", "units", "worker"],
  units: [],
  cli: FOLDERS.concat(["server", "units"]),
  mod: ["http", "ws", "sse", "sessions"],
};

/** The area a file belongs to ("http", "server", "leaf:log", "cli", …), or null outside. */
function areaOf(path: string): string | null {
  const rel = path.slice(ROOT.length + 1);
  if (rel === "mod.ts") return "mod";
  const [top, second] = rel.split("/");
  if (top === "cli" || top === "units") return top;
  if (top !== "runtime") return null;
  if (FOLDERS.includes(second)) return second;
  const base = second.replace(/\.ts$/, "");
  if (base === "server") return "server";
  if (LEAVES.includes(base)) return `leaf:${base}`;
  return `unknown:${second}`;
}

async function* sourceFiles(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) yield* sourceFiles(path);
    else if (e.name.endsWith(".ts")) yield path;
  }
}

interface Edge {
  from: string;
  to: string;
  line: string;
}

async function importEdges(): Promise<Edge[]> {
  const edges: Edge[] = [];
  const files = [`${ROOT}/mod.ts`];
  for (const d of ["runtime", "cli", "units"]) {
    for await (const f of sourceFiles(`${ROOT}/${d}`)) files.push(f);
  }
  const importRe =
    /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"|import\s*\(?\s*"(\.[^"]+)"/g;
  for (const from of files) {
    const text = await Deno.readTextFile(from);
    for (const m of text.matchAll(importRe)) {
      const spec = m[1] ?? m[2];
      const to = new URL(spec, `file://${from}`).pathname;
      if (to.includes("/node_modules/")) continue;
      edges.push({ from, to, line: `${from.slice(ROOT.length + 1)} → ${spec}` });
    }
  }
  return edges;
}

Deno.test("structure: every runtime file belongs to a known area", async () => {
  const unknown: string[] = [];
  for await (const f of sourceFiles(`${ROOT}/runtime`)) {
    if (areaOf(f)?.startsWith("unknown:")) unknown.push(f.slice(ROOT.length + 1));
  }
  assert.deepEqual(unknown, [], "add the file to an area (docs/design.md) and to this test");
});

Deno.test("structure: imports into a folder go through its mod.ts", async () => {
  const edges = await importEdges();
  assert.ok(edges.length > 100, `read ${edges.length} imports`);
  const bad = edges.filter((e) => {
    const a = areaOf(e.from), b = areaOf(e.to);
    if (a === b || b === null || !FOLDERS.includes(b)) return false;
    return !e.to.endsWith(`/runtime/${b}/mod.ts`);
  }).map((e) => e.line);
  assert.deepEqual(bad, []);
});

Deno.test("structure: each area imports only what docs/design.md allows", async () => {
  const edges = await importEdges();
  const bad: string[] = [];
  for (const e of edges) {
    const a = areaOf(e.from), b = areaOf(e.to);
    if (a === null || b === null || a === b || b.startsWith("leaf:") || a.startsWith("leaf:")) {
      continue;
    }
    if (!(ALLOWED[a] ?? []).includes(b)) bad.push(`${e.line} (${a} may not import ${b})`);
  }
  assert.deepEqual(bad, []);
});

Deno.test("structure: no cycle between areas", async () => {
  const edges = await importEdges();
  const graph = new Map<string, Set<string>>();
  for (const e of edges) {
    const a = areaOf(e.from), b = areaOf(e.to);
    if (a === null || b === null || a === b) continue;
    if (!graph.has(a)) graph.set(a, new Set());
    graph.get(a)!.add(b);
  }
  assert.ok(graph.size >= 10, `${graph.size} areas import others`);
  const cycles: string[] = [];
  const visit = (node: string, path: string[]) => {
    if (path.includes(node)) {
      cycles.push([...path.slice(path.indexOf(node)), node].join(" → "));
      return;
    }
    for (const next of graph.get(node) ?? []) visit(next, [...path, node]);
  };
  for (const node of graph.keys()) visit(node, []);
  assert.deepEqual([...new Set(cycles)], []);
});
