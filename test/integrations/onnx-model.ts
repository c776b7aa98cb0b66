/**
 * A minimal protobuf writer and a tiny ONNX model built with it (onnx/onnx.proto field
 * numbers): one Add node, inputs a and b of float[2], output c of float[2], opset 13.
 */
type Field = [number, "varint", number] | [number, "bytes", Uint8Array | string];

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** Encodes fields in order: wire type 0 for varints, 2 for bytes, strings and sub-messages. */
export function message(...fields: Field[]): Uint8Array {
  const parts: number[] = [];
  for (const [num, kind, value] of fields) {
    if (kind === "varint") {
      parts.push(...varint(num << 3), ...varint(value));
      continue;
    }
    const bytes = typeof value === "string" ? new TextEncoder().encode(value) : value;
    parts.push(...varint((num << 3) | 2), ...varint(bytes.length), ...bytes);
  }
  return Uint8Array.from(parts);
}

const FLOAT = 1;

/** ValueInfoProto{name, type: TypeProto{tensor_type{elem_type FLOAT, shape{dim{dim_value}}}}}. */
function floatVector(name: string, length: number): Uint8Array {
  const dim = message([1, "varint", length]);
  const shape = message([1, "bytes", dim]);
  const tensor = message([1, "varint", FLOAT], [2, "bytes", shape]);
  return message([1, "bytes", name], [2, "bytes", message([1, "bytes", tensor])]);
}

export function addModel(): Buffer {
  const node = message(
    [1, "bytes", "a"],
    [1, "bytes", "b"],
    [2, "bytes", "c"],
    [4, "bytes", "Add"],
  );
  const graph = message(
    [1, "bytes", node],
    [2, "bytes", "add"],
    [11, "bytes", floatVector("a", 2)],
    [11, "bytes", floatVector("b", 2)],
    [12, "bytes", floatVector("c", 2)],
  );
  const opset = message([1, "bytes", ""], [2, "varint", 13]);
  return Buffer.from(
    message(
      [1, "varint", 8], // ir_version
      [2, "bytes", "tensorseal-test"], // producer_name
      [7, "bytes", graph],
      [8, "bytes", opset],
    ),
  );
}
