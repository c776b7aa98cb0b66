/**
 * Lost root file (or HSM): the service's root key is gone. Starting with any other root must be
 * refused (the database's root check), one custodian's share alone must not rebuild it, and M
 * custodians' shares (Shamir, M of N) must: the service then starts, audits `root.recover`, and
 * unwraps a file key wrapped before the loss.
 */
import { randomBytes } from "node:crypto";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { formatShare } from "../../keys/root-shares.js";
import { serviceIdentity, serviceRecipient } from "../../keys/service/client.js";
import { recoverServiceRoot, splitServiceRoot } from "../../service/root-shares.js";
import type { DrillContext, Scenario } from "../types.js";
import { ok200 } from "./util.js";

const SHARES = 3;
const THRESHOLD = 2;

export const lostRoot: Scenario = {
  name: "lost-root",
  summary: `the service root key file is lost: ${THRESHOLD} of ${SHARES} custodians rebuild it from Shamir shares and the service unwraps again`,
  weakenings: {},
  async run(ctx: DrillContext) {
    const sb = ctx.sandbox;
    const root = randomBytes(32);
    const rootFile = join(sb.dir, "root.key");
    await writeFile(rootFile, root, { mode: 0o600 });
    const files: string[] = [];
    for (const s of await splitServiceRoot(root, SHARES, THRESHOLD)) {
      const f = join(sb.dir, `custodian-${s.index}.share`);
      await writeFile(f, formatShare(s, "tensorseal serve --root-shares SHARE_FILE..."), {
        mode: 0o600,
      });
      s.share.fill(0);
      files.push(f);
    }
    let svc = await sb.startService({ rootKey: Buffer.from(root) });
    await ok200(svc.admin, "/v1/keys", { name: "fleet" });
    const fileKey = randomBytes(32);
    const stanza = await serviceRecipient(svc.admin, "fleet").wrap(fileKey);
    await svc.stop();

    ctx.breach();
    root.fill(0);
    await rm(rootFile);
    let wrongRoot = "";
    try {
      await (await sb.startService()).stop();
    } catch (e) {
      wrongRoot = (e as Error).message;
    }
    if (wrongRoot) ctx.detected();
    ctx.check(
      "the service refuses to start with another root key",
      /root key does not match/.test(wrongRoot),
      wrongRoot || "it started",
    );
    let one = "";
    try {
      const r = await recoverServiceRoot([files[0]!]);
      r.root.fill(0);
    } catch (e) {
      one = (e as Error).message;
    }
    ctx.check("one custodian's share alone rebuilds nothing", one !== "", one || "it rebuilt");
    const { root: rebuilt, recovery } = await recoverServiceRoot([files[0]!, files[2]!]);
    svc = await sb.startService({ rootKey: rebuilt, rootRecovery: recovery });
    const recovered = await svc.db.db
      .selectFrom("audit")
      .select("seq")
      .where("action", "=", "root.recover")
      .executeTakeFirst();
    ctx.check("the recovery is audited (root.recover)", recovered !== undefined);
    const got = await serviceIdentity(svc.admin).unwrap(stanza);
    const same = got?.equals(fileKey) === true;
    got?.fill(0);
    fileKey.fill(0);
    if (same) ctx.contained();
    ctx.check(
      `with ${THRESHOLD} shares the service is back and unwraps a key wrapped before the loss`,
      same,
    );
  },
};
