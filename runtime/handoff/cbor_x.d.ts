// Types of cbor_x.js.
import type { Decoder, Encoder } from "../../node_modules/cbor-x/index.d.ts";

/** cbor-x's Decoder class, loaded on first call. */
export function importDecoder(): Promise<typeof Decoder>;
/** cbor-x's Encoder class, loaded on first call. */
export function importEncoder(): Promise<typeof Encoder>;
