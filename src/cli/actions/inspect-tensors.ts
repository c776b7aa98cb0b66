/** `inspect --tensors`: the tensor table of a sealed safetensors file (needs a key). */
import type { Identity } from "../../format/stanza.js";
import { openSealedSafetensors } from "../../integrations/safetensors/index.js";

export interface TensorRow {
  name: string;
  dtype: string;
  shape: number[];
  byteLength: number;
}

export async function tensorRows(file: string, identities: Identity[]): Promise<TensorRow[]> {
  const st = await openSealedSafetensors(file, identities);
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
