/**
 * Tampered artifact in the registry: an attacker with write access to the model store edits
 * registered sealed files (one payload byte; one public label in the header). Loading every
 * artifact the service's registry lists must refuse exactly the tampered ones, each error
 * naming the file, and still load the untouched one.
 */
import { createHash, randomBytes } from "node:crypto";
import { open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { sealFile, verifyFile } from "../../engine/index.js";
import { isTensorSealError } from "../../format/errors.js";
import { serviceIdentity, serviceRecipient } from "../../keys/service/client.js";
import { serviceStanzaDigest } from "../../keys/service/stanza.js";
import type { DrillContext, Scenario } from "../types.js";
import { ok200 } from "./util.js";

export const tamperedArtifact: Scenario = {
  name: "tampered-artifact",
  summary:
    "registered sealed files edited in storage (payload byte, header label): loading refuses each one and names the file",
  weakenings: {},
  async run(ctx: DrillContext) {
    const sb = ctx.sandbox;
    const svc = await sb.startService();
    await ok200(svc.admin, "/v1/keys", { name: "registry" });
    const names = ["intact", "payload", "header"];
    for (const n of names) {
      const plain = join(sb.dir, `${n}.bin`);
      const data = randomBytes(48 * 1024);
      await writeFile(plain, data);
      const out = join(sb.dir, `${n}.tseal`);
      let stanzaDigest = "";
      const recipient = serviceRecipient(svc.admin, "registry");
      await sealFile(plain, out, {
        recipients: [
          {
            ...recipient,
            wrap: async (fk) => {
              const s = await recipient.wrap(fk);
              stanzaDigest = serviceStanzaDigest(s);
              return s;
            },
          },
        ],
        labels: { stage: "prod" },
        workers: 0,
      });
      await ok200(svc.admin, "/v1/artifacts", {
        id: `drill-${n}`,
        digest: `sha256:${createHash("sha256").update(data).digest("hex")}`,
        key: "registry",
        version: 1,
        location: out,
        stanzaDigest,
      });
    }

    ctx.breach();
    const payload = join(sb.dir, "payload.tseal");
    const fh = await open(payload, "r+");
    try {
      const { size } = await fh.stat();
      const b = Buffer.alloc(1);
      await fh.read(b, 0, 1, size - 40);
      b[0] = b[0]! ^ 0x01;
      await fh.write(b, 0, 1, size - 40);
    } finally {
      await fh.close();
    }
    const header = join(sb.dir, "header.tseal");
    const bytes = await readFile(header);
    const at = bytes.indexOf(Buffer.from("stage"));
    if (at < 0) throw new Error("the drill could not find the label to tamper with");
    bytes.write("stagf", at);
    await writeFile(header, bytes);

    // Load every artifact the registry lists, as a deployment would.
    const listed = await svc.admin.get("/v1/artifacts");
    const artifacts = (listed.body.artifacts as { id: string; location: string }[]) ?? [];
    const refused = new Map<string, string>();
    const loaded: string[] = [];
    const identity = serviceIdentity(svc.admin);
    for (const a of artifacts) {
      try {
        await verifyFile(a.location, { identities: [identity], workers: 0 });
        loaded.push(a.id);
      } catch (e) {
        if (!isTensorSealError(e)) throw e;
        refused.set(a.id, e.file === a.location && e.message.includes(a.location) ? e.code : "");
      }
    }
    if (refused.size > 0) ctx.detected();
    for (const n of ["payload", "header"]) {
      const why = refused.get(`drill-${n}`);
      ctx.check(
        `the ${n}-tampered artifact is refused, the error naming its file`,
        why !== undefined && why !== "",
        why,
      );
    }
    ctx.check(
      "the untouched artifact still loads",
      loaded.length === 1 && loaded[0] === "drill-intact",
      `loaded: ${loaded.join(", ") || "none"}`,
    );
    if (refused.size === 2) ctx.contained();
  },
};
