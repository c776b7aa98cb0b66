/**
 * `npm run demo`: the main job end to end on the embedded default, in a temporary home.
 * Creates a keystore, generates a small safetensors model, seals it, inspects it without a key,
 * opens it, checks the bytes match, and shows a tampered copy being rejected.
 */
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const cli = resolve(dirname(fileURLToPath(import.meta.url)), "../cli/main.js");
const home = mkdtempSync(join(tmpdir(), "tensorseal-demo-"));
const env = {
  ...process.env,
  TENSORSEAL_HOME: join(home, "keystore"),
  TENSORSEAL_ROOT_KEY_FILE: join(home, "root.key"),
};

function step(title: string, args: string[], expectFail = false): string {
  process.stdout.write(`\n$ tensorseal ${args.join(" ")}\n`);
  const r = spawnSync(process.execPath, [cli, ...args], { env, encoding: "utf8" });
  process.stdout.write(r.stdout + r.stderr);
  const failed = r.status !== 0;
  if (failed !== expectFail) {
    throw new Error(
      `demo step "${title}" ${failed ? `failed (exit ${r.status})` : "unexpectedly succeeded"}`,
    );
  }
  if (expectFail) process.stdout.write(`(exit code ${r.status}: rejected as expected)\n`);
  return r.stdout;
}

/** A small but real safetensors file: two float32 tensors. */
function makeModel(path: string): void {
  const a = new Float32Array(256 * 512).map((_, i) => Math.sin(i));
  const b = new Float32Array(512).map((_, i) => i / 512);
  const header = JSON.stringify({
    __metadata__: { format: "pt" },
    "layer.weight": { dtype: "F32", shape: [256, 512], data_offsets: [0, a.byteLength] },
    "layer.bias": {
      dtype: "F32",
      shape: [512],
      data_offsets: [a.byteLength, a.byteLength + b.byteLength],
    },
  });
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  writeFileSync(
    path,
    Buffer.concat([len, Buffer.from(header), Buffer.from(a.buffer), Buffer.from(b.buffer)]),
  );
}

const sha256 = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");

try {
  writeFileSync(env.TENSORSEAL_ROOT_KEY_FILE, randomBytes(32).toString("hex"), { mode: 0o600 });
  const model = join(home, "model.safetensors");
  makeModel(model);
  process.stdout.write(
    `TensorSeal demo in ${home}\nmodel: ${model} (${readFileSync(model).length} bytes)\n`,
  );
  step("init", ["init"]);
  step("seal", [
    "seal",
    model,
    "-o",
    `${model}.tseal`,
    "--context",
    "project=demo",
    "--label",
    "name=tiny-mlp",
  ]);
  step("inspect", ["inspect", `${model}.tseal`]);
  step("open", [
    "open",
    `${model}.tseal`,
    "-o",
    join(home, "opened.safetensors"),
    "--expect-context",
    "project=demo",
  ]);
  const same = sha256(model) === sha256(join(home, "opened.safetensors"));
  process.stdout.write(`\nopened bytes match the original: ${same ? "yes" : "NO"}\n`);
  if (!same) throw new Error("round trip mismatch");
  const sealed = readFileSync(`${model}.tseal`);
  sealed[sealed.length - 100] = sealed[sealed.length - 100]! ^ 1;
  writeFileSync(join(home, "tampered.tseal"), sealed);
  process.stdout.write("\nflipped one bit near the end of a copy: tampered.tseal\n");
  step("tampered", ["open", join(home, "tampered.tseal"), "-o", join(home, "tampered.out")], true);
  process.stdout.write("\ndemo OK\n");
} finally {
  rmSync(home, { recursive: true, force: true });
}
