/**
 * onnxruntime-node on sealed models: the model is decrypted into memory and handed to
 * InferenceSession.create as bytes, so no plaintext file exists. onnxruntime-node is an
 * optional peer: it is imported only when this function runs, and a missing install is a clear
 * E_UNSUPPORTED. Models with external data files (over 2 GiB) need `exec` on a sealed directory.
 */
import type { InferenceSession } from "onnxruntime-node";
import { SealedFile } from "../engine/index.js";
import { fail } from "../format/errors.js";
import type { Identity } from "../format/stanza.js";

/** protobuf caps a serialized ModelProto at 2 GiB; bigger models keep weights outside it. */
const MAX_ONNX_BYTES = 2 ** 31 - 1;

export interface LoadOnnxOptions {
  readonly expectContext?: Readonly<Record<string, string>>;
}

export async function loadSealedOnnx(
  path: string,
  identities: readonly Identity[],
  sessionOptions: InferenceSession.SessionOptions = {},
  opts: LoadOnnxOptions = {},
): Promise<InferenceSession> {
  const ort = await importOnnxRuntime();
  const file = await SealedFile.open(path, identities, opts);
  let bytes: Buffer | null = null;
  try {
    if (file.plaintextLength > MAX_ONNX_BYTES) {
      fail(
        "E_UNSUPPORTED",
        `${path}: ${file.plaintextLength} bytes is over the 2 GiB ONNX protobuf limit; seal the model directory with its external data and use \`tensorseal exec\``,
      );
    }
    bytes = await file.readRange(0, file.plaintextLength);
    return await ort.InferenceSession.create(bytes, sessionOptions);
  } finally {
    bytes?.fill(0); // the session holds its own copy of the weights
    await file.close();
  }
}

async function importOnnxRuntime(): Promise<typeof import("onnxruntime-node")> {
  try {
    return await import("onnxruntime-node");
  } catch (e) {
    return fail(
      "E_UNSUPPORTED",
      "loadSealedOnnx needs the onnxruntime-node package: run `npm install onnxruntime-node`",
      e,
    );
  }
}
