/**
 * File key leaked: the 256-bit file key of one sealed file was released to a party that is now
 * compromised. Rewrap cannot help (it keeps the file key); the defence is `reseal`: every file
 * the leaked key opens is re-encrypted under a fresh file key. Afterwards the leaked key must
 * open no current file and the owner must read the same bytes as before.
 *
 * The response is driven with the reseal campaign directly. When `tensorseal incident` exists
 * (issue 13 §2) this drill can play its playbook instead (contain, assess, eradicate) and keep
 * the same checks.
 */
import { createHash, randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { inspectFile, openFile, sealFile } from "../../engine/index.js";
import { rewrapFile } from "../../engine/rewrap.js";
import { toLatestEdit } from "../../keys/campaign.js";
import { resealCampaign } from "../../keys/reseal-campaign.js";
import type { DrillContext, Scenario } from "../types.js";
import { knownFileKey, opens } from "./util.js";

const FILES = 3;

export const leakedFileKey: Scenario = {
  name: "leaked-file-key",
  summary:
    "a file key leaked: reseal gives every file it opens a fresh file key; the leaked key opens no current file",
  weakenings: {
    "rewrap-instead": "the response rotates and rewraps instead of resealing (keeps the file key)",
  },
  async run(ctx: DrillContext) {
    const sb = ctx.sandbox;
    const ks = await sb.keystore();
    await ks.createKey("ml");
    const files: string[] = [];
    const digests = new Map<string, string>();
    for (let i = 0; i < FILES; i++) {
      const plain = join(sb.dir, `shard-${i}.bin`);
      const data = randomBytes(40 * 1024);
      await writeFile(plain, data);
      const out = join(sb.dir, `shard-${i}.tseal`);
      await sealFile(plain, out, { recipients: [ks.recipient("ml")], workers: 0 });
      files.push(out);
      digests.set(out, sha256(data));
    }
    // The leak: shard-0's file key, as a service or a debugging session released it.
    const header = await inspectFile(files[0]!);
    let leaked: Buffer | null = null;
    for (const s of header.stanzas) leaked ??= await ks.identity().unwrap(s);
    if (!leaked) throw new Error("the drill could not unwrap its own file");
    const thief = knownFileKey(leaked);
    try {
      ctx.breach();
      // Assess: which current files does the leaked key open?
      const exposed: string[] = [];
      for (const f of files) if (await opens(f, [thief])) exposed.push(f);
      ctx.detected();
      ctx.check(
        "the leaked key opens the exposed file before the response (the attack is real)",
        exposed.length === 1 && exposed[0] === files[0],
        `${exposed.length} exposed`,
      );
      if (ctx.weakened.has("rewrap-instead")) {
        await ks.rotateKey("ml");
        for (const f of exposed)
          await rewrapFile(f, { identities: [ks.identity()], edit: toLatestEdit(ks) });
      } else {
        const r = await resealCampaign({
          files: exposed,
          journal: join(sb.dir, "reseal-journal.jsonl"),
          target: { drill: "leaked-file-key" },
          identities: async () => [ks.identity()],
          recipients: async () => [ks.recipient("ml")],
          workers: 0,
        });
        ctx.check(
          "the reseal campaign resealed every exposed file",
          r.failed === 0,
          `${r.resealed} resealed`,
        );
      }
      const stillOpen: string[] = [];
      for (const f of files) if (await opens(f, [thief])) stillOpen.push(f);
      if (stillOpen.length === 0) ctx.contained();
      ctx.check(
        "the leaked file key opens no current file",
        stillOpen.length === 0,
        `${stillOpen.length} still open`,
      );
      let same = 0;
      for (const f of files) {
        const out = `${f}.opened`;
        await openFile(f, out, { identities: [ks.identity()], workers: 0 });
        if (sha256(await readFile(out)) === digests.get(f)) same++;
      }
      ctx.check("the owner reads every file, unchanged", same === FILES, `${same} of ${FILES}`);
    } finally {
      leaked.fill(0);
    }
  },
};

function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}
