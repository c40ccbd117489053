// @ts-self-types="./cbor_x.d.ts"
// Loads cbor-x's decoder and encoder on first need (codec.ts says why). A JavaScript module
// with its own types: cbor-x 1.6.0's decode.d.ts imports a name its index.d.ts lacks, which
// `deno bundle --declaration` rejects; these types come from index.d.ts alone.
// cbor-x by path, not by package name: the worker runs under the APP's deno.json or
// package.json (docs/design.md, "Running the app"), which need not list cbor-x; a path
// resolves under any. Literal specifiers, so `deno compile` and `deno bundle` see them.
export async function importDecoder() {
  return (await import("../../node_modules/cbor-x/decode.js")).Decoder;
}

export async function importEncoder() {
  return (await import("../../node_modules/cbor-x/encode.js")).Encoder;
}
