/** `inspect --tensors`: the tensor table of a sealed safetensors file (needs a key). */
import type { RandomSource } from "../../engine/source.js";
import type { Identity } from "../../format/stanza.js";
import { openSealedSafetensors } from "../../integrations/safetensors/index.js";

export interface TensorRow {
  name: string;
  dtype: string;
  shape: number[];
  byteLength: number;
}

/** `file`: a path, or a source the caller keeps open (it is not closed here). */
export async function tensorRows(
  file: string | RandomSource,
  identities: Identity[],
): Promise<TensorRow[]> {
  const st = await openSealedSafetensors(
    typeof file === "string" ? file : keptOpen(file),
    identities,
  );
  try {
    return Object.entries(st.tensors).map(([name, t]) => ({ name, ...t, shape: [...t.shape] }));
  } finally {
    await st.close();
  }
}

export function formatTensorRows(rows: TensorRow[]): string[] {
  const width = Math.max(4, ...rows.map((r) => r.name.length));
  return [
    `tensors:       ${rows.length}`,
    ...rows.map((r) => `  ${r.name.padEnd(width)}  ${r.dtype.padEnd(7)}  [${r.shape.join(", ")}]`),
  ];
}

/** The source without its close: the caller closes it after this. */
function keptOpen(src: RandomSource): RandomSource {
  return {
    name: src.name,
    size: src.size,
    read: (offset, length) => src.read(offset, length),
    close: async () => {},
  };
}
