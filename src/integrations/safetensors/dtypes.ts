/**
 * safetensors dtypes with a whole number of bytes per element, and the typed array each one is
 * returned as. Types JavaScript has no array for (F16 before Float16Array, BF16, the 8-bit
 * floats) come back as their raw bits in an unsigned array of the same width; C64 is complex64
 * as interleaved float32 (re, im). The sub-byte types (F4, F6_*) are not supported.
 */
export const DTYPE_SIZES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  F8_E8M0: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
  C64: 8,
} as const;

export type Dtype = keyof typeof DTYPE_SIZES;

export type TensorArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

type ArrayCtor = new (buffer: ArrayBuffer, byteOffset: number, length: number) => TensorArray;

const ARRAYS: Record<Dtype, ArrayCtor> = {
  BOOL: Uint8Array,
  U8: Uint8Array,
  I8: Int8Array,
  F8_E5M2: Uint8Array,
  F8_E4M3: Uint8Array,
  F8_E8M0: Uint8Array,
  I16: Int16Array,
  U16: Uint16Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I32: Int32Array,
  U32: Uint32Array,
  F32: Float32Array,
  F64: Float64Array,
  I64: BigInt64Array,
  U64: BigUint64Array,
  C64: Float32Array,
};

export function isDtype(s: string): s is Dtype {
  return Object.hasOwn(DTYPE_SIZES, s);
}

/**
 * Copies little-endian tensor bytes into a fresh, aligned typed array (the data region gives no
 * alignment guarantee, so a view over the decrypted buffer could be misaligned).
 */
export function toTypedArray(dtype: Dtype, bytes: Uint8Array): TensorArray {
  const size = DTYPE_SIZES[dtype];
  const buffer = new ArrayBuffer(bytes.length);
  new Uint8Array(buffer).set(bytes);
  const Ctor = ARRAYS[dtype];
  // C64 holds two float32 per element.
  return new Ctor(buffer, 0, dtype === "C64" ? bytes.length / 4 : bytes.length / size);
}

/**
 * A typed array over `byteLength` bytes of `buffer` at `byteOffset` without copying, or null
 * when the offset is not a multiple of the element size (the caller copies with toTypedArray).
 */
export function viewTypedArray(
  dtype: Dtype,
  buffer: ArrayBufferLike,
  byteOffset: number,
  byteLength: number,
): TensorArray | null {
  const size = DTYPE_SIZES[dtype];
  const unit = dtype === "C64" ? 4 : size;
  if (byteOffset % unit !== 0) return null;
  const Ctor = ARRAYS[dtype] as unknown as new (
    buffer: ArrayBufferLike,
    byteOffset: number,
    length: number,
  ) => TensorArray;
  return new Ctor(buffer, byteOffset, byteLength / unit);
}
