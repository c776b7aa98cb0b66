/** Signed provenance (model-signing compatible) for sealed model directories. */
export { keyHint, loadSignerKey, loadSigningKey } from "./dsse.js";
export {
  checkOpenedFile,
  digestPlain,
  fileSignaturePath,
  signSealedFile,
  verifySealedFile,
} from "./file.js";
export { checkSignedManifest, signaturePath, signSealedDir, verifySealedDir } from "./model-dir.js";
export { sealedDigest } from "./sealed-digest.js";
export { type Binding, IGNORE_PATHS, SIGNATURE_NAME, type SignedFile } from "./statement.js";
