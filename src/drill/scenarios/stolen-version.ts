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
import { sealFile } from "../../engine/index.js";
import { rewrapFile } from "../../engine/rewrap.js";
import type { Identity } from "../../format/stanza.js";
import { toLatestEdit } from "../../keys/campaign.js";
import { Keystore } from "../../keys/keystore.js";
import {
  type ServiceClient,
  serviceIdentity,
  serviceRecipient,
} from "../../keys/service/client.js";
import { stanzaFromWire, stanzaToWire, type WireStanza } from "../../keys/service/stanza.js";
import type { DrillContext, Scenario } from "../types.js";
import { ok200, opens } from "./util.js";

export const stolenVersion: Scenario = {
  name: "stolen-version",
  summary:
    "stolen sealed file + stolen retired key version: after rotate, rewrap and a raised minimum decryption version, neither the local copy of version 1 nor the service opens the current file",
  weakenings: {
    "no-rewrap": "the files are not rewrapped to the new version",
    "no-min-version": "the service's minimum decryption version is not raised",
  },
  async run(ctx: DrillContext) {
    const sb = ctx.sandbox;
    const plain = join(sb.dir, "weights.bin");
    await writeFile(plain, randomBytes(64 * 1024));

    // Local keystore: the file, and a stolen backup of the keystore holding version 1 only.
    const ks = await sb.keystore();
    await ks.createKey("model");
    const file = join(sb.dir, "weights.tseal");
    await sealFile(plain, file, { recipients: [ks.recipient("model")], workers: 0 });
    const stolenHome = join(sb.dir, "stolen-home");
    await cp(sb.home, stolenHome, { recursive: true });
    const stolen = await Keystore.open(stolenHome, sb.unlock);

    // Key service: a file sealed to it, a copy taken, and a leaked token that may unwrap.
    const svc = await sb.startService();
    const admin = svc.admin;
    await ok200(admin, "/v1/keys", { name: "model" });
    const svcFile = join(sb.dir, "svc-weights.tseal");
    await sealFile(plain, svcFile, { recipients: [serviceRecipient(admin, "model")], workers: 0 });
    const stolenCopy = join(sb.dir, "svc-weights.stolen.tseal");
    await cp(svcFile, stolenCopy);
    const thief = serviceIdentity((await svc.principal(["unwrap"])).client);
    const owner = serviceIdentity(admin);
    try {
      ctx.check(
        "before the response, the stolen version 1 opens the local file (the attack is real)",
        await opens(file, [stolen.identity()]),
      );
      ctx.check(
        "before the response, the thief's token opens the stolen copy (the attack is real)",
        await opens(stolenCopy, [thief]),
      );
      ctx.breach();
      ctx.detected(); // the theft is reported: the response starts now
      await respond(ctx, ks, file, admin, owner, svcFile);
      ctx.contained();
      ctx.check(
        "local: the stolen version 1 no longer opens the current file",
        !(await opens(file, [stolen.identity()])),
      );
      ctx.check(
        "local: the owner's keystore (version 2) still opens it",
        await opens(file, [ks.identity()]),
      );
      ctx.check(
        "service: version 1 is refused for the stolen copy",
        !(await opens(stolenCopy, [thief])),
      );
      ctx.check(
        "service: the current file opens for its owner under version 2",
        await opens(svcFile, [owner]),
      );
    } finally {
      stolen.close();
    }
  },
};

/** Rotate, rewrap to the new version, raise the minimum decryption version: locally and on the service. */
async function respond(
  ctx: DrillContext,
  ks: Keystore,
  file: string,
  admin: ServiceClient,
  owner: Identity,
  svcFile: string,
): Promise<void> {
  const rewrap = !ctx.weakened.has("no-rewrap");
  await ks.rotateKey("model");
  if (rewrap) await rewrapFile(file, { identities: [ks.identity()], edit: toLatestEdit(ks) });
  await ks.setKey("model", { minDecryptionVersion: 2 });

  await ok200(admin, "/v1/keys/model/rotate", {});
  if (rewrap)
    await rewrapFile(svcFile, {
      identities: [owner],
      edit: (stanzas) =>
        Promise.all(
          stanzas.map(async (s) => {
            const r = await ok200(admin, "/v1/datakeys/rewrap", { stanza: stanzaToWire(s) });
            return stanzaFromWire(r.stanza as WireStanza);
          }),
        ),
    });
  if (!ctx.weakened.has("no-min-version")) {
    const set = await admin.patch("/v1/keys/model", { minDecryptionVersion: 2 });
    if (set.status !== 200) admin.refused("/v1/keys/model", set);
  }
}
