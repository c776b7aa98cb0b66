/** Sealed model directories (Hugging Face layout): seal-dir and open-dir with a sealed manifest. */
export { withAtomicDir } from "./atomic-dir.js";
export {
  MANIFEST_NAME,
  type Manifest,
  type ManifestEntry,
  MODEL_CONTEXT,
  PATH_CONTEXT,
  parseManifest,
  SEALED_SUFFIX,
} from "./manifest.js";
export {
  isSealedModelDir,
  manifestPath,
  type OpenDirOptions,
  openModelDir,
  readManifest,
} from "./open-dir.js";
export { type SealDirOptions, type SealDirResult, sealModelDir } from "./seal-dir.js";
