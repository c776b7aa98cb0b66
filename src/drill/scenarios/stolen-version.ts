/**
 * Stolen artifact + stolen retired key version. The thief copies a sealed file and the key
 * material of version 1 (a keystore backup; on the service, a token that may still unwrap
 * version 1 stanzas). The defence: rotate, rewrap the file to version 2, raise the minimum
 * decryption version. Then the stolen version 1 must not open the *current* file, and the
 * service must refuse to release anything under version 1. (The copy stolen before the rewrap
 * keeps its old file key: that residual risk is what `reseal` is for — leaked-file-key.ts.)
 */
import { randomBytes } from "node:crypto";
import { cp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { sealFile, verifyFile } from "../../engine/index.js";
import { rewrapFile } from "../../engine/rewrap.js";
import { isTensorSealError } from "../../format/errors.js";
import { toLatestEdit } from "../../keys/campaign.js";
import { Keystore } from "../../keys/keystore.js";
import { serviceIdentity, serviceRecipient } from "../../keys/service/client.js";
import { stanzaFromWire, stanzaToWire, type WireStanza } from "../../keys/service/stanza.js";
import type { DrillContext, Scenario } from "../types.js";
import { opens } from "./util.js";

export const stolenVersion: Scenario = {
  name: "stolen-version",
  summary:
    "stolen sealed file + stolen retired key version: after rotate, rewrap and a raised minimum decryption version, neither the local copy of version 1 nor the service opens the current file",
  weakenings: {
    "no-rewrap": "the file is not rewrapped to the new version",
    "no-min-version": "the service's minimum decryption version is not raised",
  },
  async run(ctx: DrillContext) {
    await local(ctx);
    await service(ctx);
  },
};

/** The local keystore: a stolen backup holding version 1 only. */
async function local(ctx: DrillContext): Promise<void> {
  const sb = ctx.sandbox;
  const ks = await sb.keystore();
  await ks.createKey("model");
  const plain = join(sb.dir, "weights.bin");
  await writeFile(plain, randomBytes(64 * 1024));
  const file = join(sb.dir, "weights.tseal");
  await sealFile(plain, file, { recipients: [ks.recipient("model")], workers: 0 });
  // The theft: the keystore file with version 1 (and its unlock), and the sealed file.
  const stolenHome = join(sb.dir, "stolen-home");
  await cp(sb.home, stolenHome, { recursive: true });
  const stolen = await Keystore.open(stolenHome, sb.unlock);
  try {
    ctx.check(
      "local: before the response, stolen version 1 opens the file (the attack is real)",
      await opens(file, [stolen.identity()]),
    );
    ctx.breach();
    ctx.detected(); // the theft is reported: the response starts
    await ks.rotateKey("model");
    if (!ctx.weakened.has("no-rewrap"))
      await rewrapFile(file, { identities: [ks.identity()], edit: toLatestEdit(ks) });
    await ks.setKey("model", { minDecryptionVersion: 2 });
    ctx.check(
      "local: the stolen version 1 no longer opens the current file",
      !(await opens(file, [stolen.identity()])),
    );
    let refused = "";
    try {
      await verifyFile(file, { identities: [ks.identity()], workers: 0 });
    } catch (e) {
      refused = isTensorSealError(e) ? e.code : String(e);
    }
    ctx.check(
      "local: the owner's keystore (version 2) still opens it",
      refused === "",
      refused || undefined,
    );
  } finally {
    stolen.close();
  }
}

/** The key service: a version 1 stanza is refused once the floor is raised. */
async function service(ctx: DrillContext): Promise<void> {
  const svc = await ctx.sandbox.startService();
  const admin = svc.admin;
  const created = await admin.post("/v1/keys", { name: "model" });
  if (created.status !== 200) admin.refused("/v1/keys", created);
  const plain = join(ctx.sandbox.dir, "svc-weights.bin");
  await writeFile(plain, randomBytes(32 * 1024));
  const file = join(ctx.sandbox.dir, "svc-weights.tseal");
  await sealFile(plain, file, { recipients: [serviceRecipient(admin, "model")], workers: 0 });
  const stolenCopy = join(ctx.sandbox.dir, "svc-weights.stolen.tseal");
  await cp(file, stolenCopy);
  // The thief holds a token that may unwrap (a leaked CI credential).
  const thief = await svc.principal(["unwrap"]);
  ctx.check(
    "service: before the response, the thief's token opens the stolen copy (the attack is real)",
    await opens(stolenCopy, [serviceIdentity(thief.client)]),
  );
  const rotated = await admin.post("/v1/keys/model/rotate", {});
  if (rotated.status !== 200) admin.refused("/v1/keys/model/rotate", rotated);
  const owner = serviceIdentity(admin);
  if (!ctx.weakened.has("no-rewrap")) {
    await rewrapFile(file, {
      identities: [owner],
      edit: async (stanzas) =>
        Promise.all(
          stanzas.map(async (s) => {
            const r = await admin.post("/v1/datakeys/rewrap", { stanza: stanzaToWire(s) });
            if (r.status !== 200) admin.refused("/v1/datakeys/rewrap", r);
            return stanzaFromWire(r.body.stanza as WireStanza);
          }),
        ),
    });
  }
  if (!ctx.weakened.has("no-min-version")) {
    const set = await admin.patch("/v1/keys/model", { minDecryptionVersion: 2 });
    if (set.status !== 200) admin.refused("/v1/keys/model", set);
  }
  ctx.contained();
  ctx.check(
    "service: version 1 is refused for the stolen copy",
    !(await opens(stolenCopy, [serviceIdentity(thief.client)])),
  );
  ctx.check(
    "service: the current file opens for its owner under version 2",
    await opens(file, [owner]),
  );
}
