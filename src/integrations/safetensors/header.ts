/**
 * A strict parser of the safetensors header (github.com/huggingface/safetensors, README
 * "Format"): 8 bytes little-endian u64 N, then N bytes of UTF-8 JSON, then the data region.
 * The JSON maps tensor names to {dtype, shape, data_offsets} plus an optional `__metadata__`
 * string map. Offsets are relative to the data region; tensors must cover it exactly, with no
 * gaps and no overlap, and each must hold product(shape) × dtype size bytes. Anything else is
 * E_MALFORMED with a message that names the problem.
 */
import { fail } from "../../format/errors.js";
import { DTYPE_SIZES, type Dtype, isDtype } from "./dtypes.js";

/** The reference library's MAX_HEADER_SIZE: a hostile N must not make us allocate gigabytes. */
export const MAX_HEADER_SIZE = 100_000_000;
export const LENGTH_PREFIX_SIZE = 8;

export interface TensorInfo {
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  /** Byte offsets [begin, end) relative to the start of the data region. */
  readonly dataOffsets: readonly [number, number];
  readonly byteLength: number;
}

export interface SafetensorsHeader {
  /** N: length of the JSON header in bytes. */
  readonly headerLength: number;
  /** Absolute offset of the data region: 8 + N. */
  readonly dataStart: number;
  readonly metadata: Readonly<Record<string, string>>;
  /** In file order (ascending data offsets). */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
}

/** Reads N from the first 8 bytes and checks it against the cap and the file size. */
export function readHeaderLength(prefix: Uint8Array, fileSize: number): number {
  if (prefix.length < LENGTH_PREFIX_SIZE || fileSize < LENGTH_PREFIX_SIZE) {
    fail("E_MALFORMED", `safetensors: ${fileSize} bytes is too short for the 8-byte header length`);
  }
  const n = Buffer.from(prefix.buffer, prefix.byteOffset, 8).readBigUInt64LE(0);
  if (n > BigInt(MAX_HEADER_SIZE)) {
    fail("E_MALFORMED", `safetensors: header length ${n} exceeds the ${MAX_HEADER_SIZE}-byte cap`);
  }
  if (n < 2n) fail("E_MALFORMED", `safetensors: header length ${n} cannot hold a JSON object`);
  if (n > BigInt(fileSize - LENGTH_PREFIX_SIZE)) {
    fail("E_MALFORMED", `safetensors: header length ${n} is past the end of the file`);
  }
  return Number(n);
}

/** Parses and validates the JSON header; `dataLength` = file size - 8 - N. */
export function parseHeader(json: Uint8Array, dataLength: number): SafetensorsHeader {
  const doc = decodeJson(json);
  const metadata = parseMetadata(doc.__metadata__);
  const entries: [string, TensorInfo][] = [];
  for (const [name, value] of Object.entries(doc)) {
    if (name === "__metadata__") continue;
    entries.push([name, parseTensor(name, value)]);
  }
  checkCoverage(entries, dataLength);
  return {
    headerLength: json.length,
    dataStart: LENGTH_PREFIX_SIZE + json.length,
    metadata,
    tensors: new Map(entries),
  };
}

function decodeJson(json: Uint8Array): Record<string, unknown> {
  if (json[0] !== 0x7b) fail("E_MALFORMED", "safetensors: the header does not start with '{'");
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(json);
  } catch (e) {
    return fail("E_MALFORMED", "safetensors: the header is not valid UTF-8", e);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return fail(
      "E_MALFORMED",
      `safetensors: the header is not valid JSON (${(e as Error).message})`,
    );
  }
  if (!isPlainObject(doc)) fail("E_MALFORMED", "safetensors: the header is not a JSON object");
  return doc;
}

function parseMetadata(value: unknown): Record<string, string> {
  if (value === undefined) return {};
  if (!isPlainObject(value)) fail("E_MALFORMED", "safetensors: __metadata__ is not an object");
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== "string") {
      fail(
        "E_MALFORMED",
        `safetensors: __metadata__ value for ${JSON.stringify(k)} is not a string`,
      );
    }
    out[k] = v;
  }
  return out;
}

function parseTensor(name: string, value: unknown): TensorInfo {
  const where = `safetensors: tensor ${JSON.stringify(name)}`;
  if (!isPlainObject(value)) fail("E_MALFORMED", `${where} is not an object`);
  const extra = Object.keys(value).filter((k) => !["dtype", "shape", "data_offsets"].includes(k));
  if (extra.length > 0)
    fail("E_MALFORMED", `${where} has unknown field ${JSON.stringify(extra[0])}`);
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== "string" || !isDtype(dtype)) {
    fail("E_MALFORMED", `${where} has unknown dtype ${JSON.stringify(dtype)}`);
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    fail("E_MALFORMED", `${where} has a shape that is not a list of whole numbers >= 0`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    fail("E_MALFORMED", `${where} has data_offsets that are not [begin, end]`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin)
    fail("E_MALFORMED", `${where} has data_offsets [${begin}, ${end}] with end < begin`);
  const elements = shape.reduce((a: bigint, d: number) => a * BigInt(d), 1n);
  const expected = elements * BigInt(DTYPE_SIZES[dtype]);
  if (expected !== BigInt(end - begin)) {
    fail(
      "E_MALFORMED",
      `${where}: ${dtype}[${shape.join(", ")}] needs ${expected} bytes, data_offsets give ${end - begin}`,
    );
  }
  return { dtype, shape: [...shape], dataOffsets: [begin, end], byteLength: end - begin };
}

/** Sorted by begin, each tensor must start where the previous ended, and the last end at N. */
function checkCoverage(entries: [string, TensorInfo][], dataLength: number): void {
  entries.sort(
    (a, b) =>
      a[1].dataOffsets[0] - b[1].dataOffsets[0] || a[1].dataOffsets[1] - b[1].dataOffsets[1],
  );
  let at = 0;
  let prev = "the start of the data region";
  for (const [name, t] of entries) {
    const [begin, end] = t.dataOffsets;
    if (begin < at) {
      fail("E_MALFORMED", `safetensors: tensor ${JSON.stringify(name)} overlaps ${prev}`);
    }
    if (begin > at) {
      fail(
        "E_MALFORMED",
        `safetensors: gap of ${begin - at} bytes before tensor ${JSON.stringify(name)}`,
      );
    }
    at = end;
    prev = `tensor ${JSON.stringify(name)}`;
  }
  if (at !== dataLength) {
    const what =
      at > dataLength ? "past the end of the file" : `${dataLength - at} bytes short of the end`;
    fail(
      "E_MALFORMED",
      `safetensors: the tensors end ${what} (data region is ${dataLength} bytes)`,
    );
  }
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
