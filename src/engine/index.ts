/**
 * The engine layer: sealing and opening over files (parallel, atomic), streams (bounded memory),
 * byte ranges (random access), verification and in-place header rewrap. Imports only the
 * format layer and Node built-ins.
 */

export { AtomicOutput, type CommitOptions, withAtomicOutput } from "./atomic.js";
export { exitBySignal, onInterrupt, uninterruptible } from "./interrupt.js";
export { onNotice } from "./notices.js";
export { openFile, verifyFile } from "./open-file.js";
export { type OpenedInMemory, type OpenToMemoryOptions, openToMemory } from "./open-memory.js";
export {
  openSource,
  openSourceToMemory,
  SOURCE_BATCH_BYTES,
  SOURCE_WINDOW,
  type SourceOpenOptions,
  STREAM_BATCH_BYTES,
  verifySource,
} from "./open-source.js";
export type {
  OpenOptions,
  OpenResult,
  SealOptions,
  SealResult,
  StreamOpenOptions,
  StreamSealOptions,
  VerifyOptions,
} from "./options.js";
export { type OutputKind, outputKind, withOutputStream, writeFileAtomic } from "./output.js";
export { closeWorkers } from "./pool.js";
export type { ProgressCallback } from "./progress.js";
export {
  headerDigest,
  type ResealCommit,
  type ResealOptions,
  type ResealResult,
  resealFile,
} from "./reseal.js";
export {
  addRecipients,
  type RewrapOptions,
  type RewrapRegistry,
  type RewrapResult,
  removeRecipients,
  rewrapFile,
  type StanzaEdit,
} from "./rewrap.js";
export { sealFile } from "./seal-file.js";
export { type DecryptStats, inspectFile, inspectSource, SealedFile } from "./sealed-file.js";
export { fileSource, type RandomSource } from "./source.js";
export { removeStaleTemps, tempPathFor, wipeTreeSync } from "./stale-temps.js";
export { openStream, sealStream } from "./stream.js";
