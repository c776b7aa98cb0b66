// The AWS Encryption SDK for JavaScript as a whole-process peer of `npm run bench:peers`:
//   node esdk.mjs encrypt|decrypt KEYFILE INPUT|- [OUTPUT]   (-: stdin; no OUTPUT: stdout)
// What a user of the SDK would write for a file: its streaming API with a raw AES-256 keyring
// (a local 32-byte wrapping key, no KMS call), 1 MiB frames (issue 11), and the committing
// suite without an ECDSA signature (ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY): key
// commitment like TensorSeal's, and no signature that TensorSeal's seal does not make either
// (the SDK's default suite adds ECDSA P-384 over the whole message). A file OUTPUT is fsynced
// before the process ends, as TensorSeal's outputs are. Decryption uses the unsigned-message
// stream, which refuses signed messages. Not part of the package: scripts/setup-bench-peers.sh
// installs it here from its own lockfile.
import {
  closeSync,
  createReadStream,
  createWriteStream,
  fsyncSync,
  openSync,
  readFileSync,
} from "node:fs";
import { pipeline } from "node:stream/promises";
import {
  AlgorithmSuiteIdentifier,
  buildClient,
  CommitmentPolicy,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
} from "@aws-crypto/client-node";

const [mode, keyFile, input, output] = process.argv.slice(2);
if (!["encrypt", "decrypt"].includes(mode) || !keyFile || !input) {
  process.stderr.write("usage: node esdk.mjs encrypt|decrypt KEYFILE INPUT [OUTPUT]\n");
  process.exit(2);
}
const key = readFileSync(keyFile);
if (key.length !== 32) throw new Error("the key file must hold 32 bytes");
const keyring = new RawAesKeyringNode({
  keyName: "bench",
  keyNamespace: "tensorseal-bench",
  unencryptedMasterKey: new Uint8Array(key),
  wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
});
const client = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
const transform =
  mode === "encrypt"
    ? client.encryptStream(keyring, {
        suiteId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY,
        frameLength: 1 << 20,
      })
    : client.decryptUnsignedMessageStream(keyring);
const source = input === "-" ? process.stdin : createReadStream(input, { highWaterMark: 1 << 20 });
if (output) {
  const sink = createWriteStream(output, { highWaterMark: 1 << 20 });
  await pipeline(source, transform, sink);
  const fd = openSync(output, "r");
  fsyncSync(fd);
  closeSync(fd);
} else {
  await pipeline(source, transform, process.stdout);
}
