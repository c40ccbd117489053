/**
 * @module
 * The handoff's wire formats (docs/design.md, "The handoff protocol"): the versioned state one
 * process leaves for the next (state.ts), its sealed, checksummed encoding (codec.ts), the
 * bundle socket that carries it with the connection fds (bundle.ts), the fdstore names
 * (names.ts), and the messages of a warm takeover between two processes (takeover.ts). Depends on `sys/` only; what drives a server through a handoff lives in
 * `worker/`. Other areas import only from here.
 */
export {
  checkConnectionRecord,
  checkHandoffState,
  checkPlainData,
  CONNECTION_KINDS,
  type ConnectionKind,
  type ConnectionRecord,
  HANDOFF_STATE_VERSION,
  type HandoffState,
  isSameAddress,
  MAX_PLAIN_DEPTH,
  type PlainData,
} from "./state.ts";
export {
  crc32c,
  decodeState,
  type DecodeStateOptions,
  encodeState,
  loadStateCodec,
  loadStateDecoder,
} from "./codec.ts";
export {
  checkIdleTable,
  emptyIdleTable,
  type IdleTable,
  IdleTableBuilder,
  IdleTableReader,
} from "./idle_table.ts";
export {
  BUNDLE_VERSION,
  type BundleContents,
  type BundleHeader,
  growFdTable,
  MAX_BUNDLE_FDS,
  MAX_STATE_BYTES,
  readBundle,
  type ReadBundleOptions,
  writeBundle,
  type WriteBundleOptions,
} from "./bundle.ts";
export {
  bundleGeneration,
  bundleName,
  LISTENER_PREFIX,
  listenerStoreName,
  ownListenerName,
} from "./names.ts";
export {
  decodeTakeover,
  encodeTakeover,
  receiveTakeover,
  receiveTakeoverSync,
  sendTakeover,
  TAKEOVER_VERSION,
  TakeoverError,
  type TakeoverMessage,
  type TakeoverPacket,
} from "./takeover.ts";
export {
  HandoffBundleError,
  type HandoffBundleReason,
  HandoffStateError,
  type HandoffStateReason,
} from "./errors.ts";
