/**
 * File key leaked: a partner's token that may unwrap was used to take the 256-bit file key of
 * one sealed file, and the partner is now compromised. Rewrap cannot help (it keeps the file
 * key); the defence is the incident playbook run end to end against the key service, as a
 * responder runs it (src/incident, the same functions the CLI calls):
 *   open (principal scope) -> contain (the service blocks the principal and revokes its token)
 *   -> assess (from the audit: exactly the file whose key was released is exposed) ->
 *   eradicate (reseal: a fresh file key) -> report (the resealed file, a verified audit chain).
 * Afterwards the leaked key must open no current file, the compromised token must be refused,
 * and the owner must read the same bytes as before.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { openFile, sealFile } from "../../engine/index.js";
import { rewrapFile } from "../../engine/rewrap.js";
import { isTensorSealError } from "../../format/errors.js";
import {
  assess,
  buildReport,
  contain,
  eradicate,
  type IncidentContext,
  openIncident,
  serviceControl,
} from "../../incident/index.js";
import { toLatestEdit } from "../../keys/campaign.js";
import { serviceIdentity, serviceRecipient } from "../../keys/service/client.js";
import { ServiceToLatest } from "../../keys/service/latest.js";
import { registerSealed } from "../register.js";
import type { DrillContext, Scenario } from "../types.js";
import { knownFileKey, ok200, opens } from "./util.js";

const FILES = 3;

export const leakedFileKey: Scenario = {
  name: "leaked-file-key",
  summary:
    "a file key leaked to a compromised partner: the incident playbook (open, contain, assess, eradicate with reseal, report) leaves the leaked key opening no current file",
  weakenings: {
    "rewrap-instead":
      "eradication rotates and rewraps instead of resealing (the playbook's reseal skipped; keeps the file key)",
    "no-contain": "the containment step is skipped (the partner's token is not blocked or revoked)",
  },
  async run(ctx: DrillContext) {
    const sb = ctx.sandbox;
    const svc = await sb.startService();
    const admin = svc.admin;
    await ok200(admin, "/v1/keys", { name: "ml" });
    const dir = join(sb.dir, "models");
    await mkdir(dir);
    const files: string[] = [];
    const digests = new Map<string, string>();
    for (let i = 0; i < FILES; i++) {
      const plain = join(sb.dir, `shard-${i}.bin`);
      const data = randomBytes(40 * 1024);
      await writeFile(plain, data);
      const out = join(dir, `shard-${i}.tseal`);
      await sealFile(plain, out, { recipients: [serviceRecipient(admin, "ml")], workers: 0 });
      await registerSealed(admin, out, data);
      files.push(out);
      digests.set(out, sha256(data));
    }
    // The leak: the partner's token unwraps shard-0 (the service releases its file key).
    const partner = await svc.principal(["unwrap"]);
    const leakedKey = await leakedFileKeyOf(files[0]!, serviceIdentity(partner.client));
    const thief = knownFileKey(leakedKey);
    const owner = serviceIdentity(admin);
    try {
      ctx.breach();
      const exposedBefore: string[] = [];
      for (const f of files) if (await opens(f, [thief])) exposedBefore.push(f);
      ctx.check(
        "the leaked key opens the exposed file before the response (the attack is real)",
        exposedBefore.length === 1 && exposedBefore[0] === files[0],
        `${exposedBefore.length} exposed`,
      );
      ctx.check(
        "the partner's token unwraps before the response (the attack is real)",
        await unwraps(files[0]!, serviceIdentity(partner.client)),
      );

      // 1. open: the responder reports the leak.
      const inc = await openIncident({
        home: sb.home,
        scope: `principal:${partner.id}`,
        reason: "drill: a partner's file key leaked",
        control: serviceControl(admin, await admin.id()),
        client: admin,
        now: () => new Date(),
      });
      ctx.detected();
      const ictx: IncidentContext = {
        home: sb.home,
        inc,
        control: serviceControl(admin, await admin.id()),
        client: admin,
        now: () => new Date(),
      };
      // 2. contain.
      if (!ctx.weakened.has("no-contain")) {
        const c = await contain(ictx);
        ctx.check(
          "contain completed (no approval pending)",
          !c.waiting && inc.state === "contained",
        );
      }
      // Asked for the file it already had: a refusal of that is the containment, and no other
      // file's key is released to it (which would widen the exposure the assessment finds).
      const refused = !(await unwraps(files[0]!, serviceIdentity(partner.client)));
      ctx.check("the compromised partner's token is refused after containment", refused);
      // 3. assess.
      const a = await assess(ictx, { paths: [dir] });
      const exposed = a.files.filter((f) => f.class === "exposed").map((f) => f.file);
      ctx.check(
        "assess finds exactly the file whose key was released (from the audit)",
        exposed.length === 1 && exposed[0] === files[0],
        `${exposed.length} exposed, ${a.releases.length} release(s)`,
      );
      // 4. eradicate.
      if (ctx.weakened.has("rewrap-instead")) {
        await ok200(admin, "/v1/keys/ml/rotate", {});
        const ks = await sb.keystore();
        for (const f of exposed)
          await rewrapFile(f, {
            identities: [owner],
            edit: toLatestEdit(ks, new ServiceToLatest(admin)),
          });
      } else {
        const r = await eradicate(ictx, {
          paths: [dir],
          identities: async () => [owner],
          recipients: async () => [serviceRecipient(admin, "ml")],
          keystore: null,
          destroyDays: 7,
          concurrency: 1,
        });
        ctx.check(
          "eradicate resealed every exposed file and ended eradicated",
          r.unreachable.length === 0 &&
            inc.state === "eradicated" &&
            inc.files.filter((f) => f.outcome === "resealed").length === exposed.length,
          `${inc.files.filter((f) => f.outcome === "resealed").length} resealed, state ${inc.state}`,
        );
      }
      const stillOpen: string[] = [];
      for (const f of files) if (await opens(f, [thief])) stillOpen.push(f);
      if (stillOpen.length === 0 && refused) ctx.contained();
      ctx.check(
        "the leaked file key opens no current file",
        stillOpen.length === 0,
        `${stillOpen.length} still open`,
      );
      let same = 0;
      for (const f of files) {
        const out = `${f}.opened`;
        await openFile(f, out, { identities: [owner], workers: 0 });
        if (sha256(await readFile(out)) === digests.get(f)) same++;
      }
      ctx.check("the owner reads every file, unchanged", same === FILES, `${same} of ${FILES}`);
      // 5. report.
      const rep = await buildReport(inc, { client: admin, now: () => new Date() });
      ctx.check(
        "the report lists the resealed file and a verified audit chain",
        rep.files.list.some((f) => f.file === files[0] && f.outcome === "resealed") &&
          rep.forensic.chain.verified &&
          rep.forensic.chain.ok === true,
        rep.forensic.chain.reason ?? `${rep.files.list.length} file(s) in the report`,
      );
    } finally {
      leakedKey.fill(0);
    }
  },
};

async function leakedFileKeyOf(
  file: string,
  id: ReturnType<typeof serviceIdentity>,
): Promise<Buffer> {
  const { inspectFile } = await import("../../engine/index.js");
  for (const s of (await inspectFile(file)).stanzas) {
    const k = await id.unwrap(s);
    if (k) return Buffer.from(k);
  }
  throw new Error("the drill could not unwrap its own file");
}

/** Whether this identity still gets the file key (a refusal of the service is false). */
async function unwraps(file: string, id: ReturnType<typeof serviceIdentity>): Promise<boolean> {
  try {
    await leakedFileKeyOf(file, id);
    return true;
  } catch (e) {
    if (isTensorSealError(e)) return false;
    throw e;
  }
}

function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}
