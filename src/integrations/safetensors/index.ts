/** safetensors over sealed files: a strict header parser and lazy, per-tensor decryption. */
export {
  DTYPE_SIZES,
  type Dtype,
  type TensorArray,
  toTypedArray,
  viewTypedArray,
} from "./dtypes.js";
export {
  LENGTH_PREFIX_SIZE,
  MAX_HEADER_SIZE,
  parseHeader,
  readHeaderLength,
  type SafetensorsHeader,
  type TensorInfo,
} from "./header.js";
export {
  type LoadedSafetensors,
  type LoadSafetensorsOptions,
  loadSealedSafetensors,
} from "./load-all.js";
export {
  type OpenSafetensorsOptions,
  openSealedSafetensors,
  readSealedHeader,
  type SealedSafetensors,
  type TensorMeta,
} from "./sealed.js";
