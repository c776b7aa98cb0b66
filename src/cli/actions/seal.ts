/**
 * `tensorseal seal FILE`: encrypt a file or stream for its recipients (flags: commands/seal.ts).
 */
import { createHash } from "node:crypto";
import { createReadStream, statSync } from "node:fs";
import { resolve } from "node:path";
import type { Command, OptionValues } from "commander";
import type { SealResult } from "../../engine/options.js";
import { sealFile } from "../../engine/seal-file.js";
import { sealStream } from "../../engine/stream.js";
import { fail } from "../../format/errors.js";
import { metadataOf, TIER_LABEL } from "../../format/metadata.js";
import { publicRecipient, SUITE_PUBLIC } from "../../format/public.js";
import type { Recipient, Stanza } from "../../format/stanza.js";
import { detectContentType } from "../../integrations/content-type.js";
import { isObjectUrl } from "../../integrations/objstore/url.js";
import {
  parseServiceStanza,
  SERVICE_STANZA,
  serviceStanzaDigest,
} from "../../keys/service/stanza.js";
import { refuseRecipientsForPublic, SERVICE_LEVELS, tierEncrypts } from "../../tiers/policy.js";
import { recipientsFor } from "../keys-context.js";
import { checkOutput, isStreamInput, parsePairs, parseSize, printJson } from "../options.js";
import { say } from "../output.js";
import { type SealFlags, withCreationRule } from "../project-config.js";
import { runStream } from "../streams.js";
import { progressBar } from "../terminal.js";
import {
  checkRecipientsForTier,
  keystoreLookup,
  labelsWithMetadata,
  tiersHere,
} from "../tier-check.js";

export async function seal(input: string, flags: OptionValues, cmd: Command): Promise<void> {
  // Defaults from the first matching creation rule of .tensorseal.yaml; flags override.
  const explicitChunk = cmd.getOptionValueSource("chunkSize") !== "default";
  const o = withCreationRule(input, flags as SealFlags & OptionValues, explicitChunk);
  const output: string = o.output ?? (input === "-" ? "-" : `${input}.tseal`);
  checkInput(input);
  const toUrl = isObjectUrl(output);
  // An s3:// output: a multipart upload that appears only complete (objstore/s3-upload.ts).
  const target = toUrl
    ? (await import("../../integrations/objstore/index.js")).s3Target(output)
    : null;
  if (!toUrl) checkOutput(output, o.force);
  const streaming = isStreamInput(input) || output === "-";
  if (output === "-" && o.json) fail("E_USAGE", "--json needs -o FILE: stdout is the sealed file");
  if (o.register) {
    if (!(o.recipient ?? []).some((r: string) => r.startsWith("service:")))
      fail("E_USAGE", "--register needs a service:NAME recipient (-r service:NAME)");
    if (streaming)
      fail("E_USAGE", "--register needs an input file and an output file (not - or a pipe)");
  }
  const signed = o.sign
    ? await (await import("./seal-sign.js")).startSigning(o.sign, input, output, streaming)
    : undefined;
  // The plaintext digest, computed before sealing (the sealing pass does not expose one).
  const digest = o.register ? await sha256File(input) : null;
  const stanzas: WrittenStanza[] = [];
  // Tier, purpose and owner go into the authenticated header; the tier's rules are checked first.
  const tiers = tiersHere();
  const labels = labelsWithMetadata(parsePairs(o.label, "--label"), o, tiers);
  // An unencrypted tier (public, spec/FORMAT.md §2.5): integrity only, the key published.
  const encrypted = tierEncrypts(tiers, labels);
  if (!encrypted && (o.key?.length || o.recipient?.length || o.passphrase || o.passphraseFile)) {
    refuseRecipientsForPublic(`sealing ${input}`, labels[TIER_LABEL]!);
  }
  const recipients = encrypted
    ? (await recipientsFor(o)).map((r) =>
        o.register && r.id.startsWith("service:") ? capturing(r, stanzas) : r,
      )
    : [publicRecipient()];
  const ids = recipients.map((r) => r.id);
  if (encrypted) {
    await checkRecipientsForTier(`sealing ${input}`, labels, ids, tiers, await keystoreLookup());
  }
  const opts = {
    ...(encrypted ? {} : { suite: SUITE_PUBLIC }),
    recipients,
    chunkSize: parseSize(o.chunkSize),
    contentType: o.contentType ?? (streaming ? undefined : await detectContentType(input)),
    context: parsePairs(o.context, "--context"),
    labels,
  };
  let result: SealResult;
  if (target) result = await sealToUrl(input, target, { ...opts, force: o.force });
  else if (streaming)
    result = await runStream(input, output, (r, w, inputOffset) =>
      sealStream(r, w, { ...opts, inputOffset }),
    );
  else {
    const bar = progressBar("sealing");
    result = await sealFile(input, output, {
      ...opts,
      ...(bar.shown && { onProgress: bar.update }),
    }).finally(() => bar.done());
  }
  await signed?.();
  // Registered only now that the sealed file is committed (renamed into place).
  const artifacts = digest
    ? await register(
        cmd,
        digest,
        stanzas,
        toUrl ? output : resolve(output),
        registryLabels(o.label, labels),
      )
    : undefined;
  if (o.json)
    printJson({
      output,
      recipients: recipients.map((r) => r.id),
      ...result,
      ...(artifacts ? { artifacts } : {}),
    });
  else if (output !== "-" && !encrypted)
    say(`sealed ${input} -> ${output}: public (integrity only, not encrypted; readable by anyone)`);
  else if (output !== "-")
    say(`sealed ${input} -> ${output} for ${recipients.map((r) => r.id).join(", ")}`);
}

/**
 * Seals IN (a file, whose length is recorded for random access, or a stream) straight into an
 * S3 multipart upload; the upload is aborted on any failure.
 */
async function sealToUrl(
  input: string,
  target: { bucket: string; key: string },
  opts: Parameters<typeof sealStream>[2] & { force?: boolean },
): Promise<SealResult> {
  const { sealToS3 } = await import("../../integrations/objstore/s3-upload.js");
  const { open: openFh } = await import("node:fs/promises");
  const fh = input === "-" ? null : await openFh(input, "r");
  try {
    const st = fh ? await fh.stat() : null;
    const bar = progressBar("sealing");
    return await sealToS3(fh ? fh.fd : 0, target.bucket, target.key, {
      ...opts,
      ...(st?.isFile() ? { plaintextLength: st.size } : {}),
      onProgress: bar.update,
    }).finally(() => bar.done());
  } finally {
    await fh?.close().catch(() => {});
  }
}

/**
 * The registry's labels: the user's, plus the file's tier as the service's `sensitivity` label
 * when it names one of the service's levels (Cedar policies can then act on it) and the user
 * gave none.
 */
function registryLabels(flags: string[] | undefined, header: Record<string, string>) {
  const labels = parsePairs(flags, "--label");
  const tier = metadataOf(header).tier;
  if (tier && SERVICE_LEVELS.includes(tier) && labels.sensitivity === undefined)
    labels.sensitivity = tier;
  return labels;
}

/** A directory is a model, not a file: say which command seals it. */
function checkInput(input: string): void {
  if (input !== "-" && statSync(input, { throwIfNoEntry: false })?.isDirectory()) {
    fail(
      "E_USAGE",
      `${input} is a directory: seal a model directory with \`tensorseal seal-dir ${input}\``,
    );
  }
}

async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return `sha256:${h.digest("hex")}`;
}

/** What registration needs of a service stanza this command wrote. */
interface WrittenStanza {
  name: string;
  version: number;
  /** SHA-256 of its wrapped file key: the service decides unwraps of it with this artifact. */
  digest: string;
}

/** A service recipient that also records key name, version and digest of the stanza it made. */
function capturing(r: Recipient, out: WrittenStanza[]): Recipient {
  const record = (s: Stanza) => {
    if (s.type === SERVICE_STANZA) {
      const p = parseServiceStanza(s);
      out.push({ name: p.name, version: p.version, digest: serviceStanzaDigest(s) });
    }
  };
  return {
    id: r.id,
    matches: (s) => r.matches(s),
    wrap: async (fk) => {
      const s = await r.wrap(fk);
      record(s);
      return s;
    },
  };
}

async function register(
  cmd: Command,
  digest: string,
  stanzas: WrittenStanza[],
  location: string,
  labels: Record<string, string>,
): Promise<string[]> {
  const url = (cmd.optsWithGlobals().server as string | undefined) ?? process.env.TENSORSEAL_SERVER;
  const { serviceClientFromEnv } = await import("../../keys/service/client.js");
  const client = serviceClientFromEnv(url);
  if (!client)
    return fail("E_USAGE", "--register needs the key service: --server URL or TENSORSEAL_SERVER");
  const ids: string[] = [];
  try {
    // The header lets the service check the recipient kinds against the key's tier; an
    // object-store output is not read back (a tier that restricts kinds then refuses it).
    const header = isObjectUrl(location)
      ? undefined
      : await (await import("../../keys/service/registry.js")).headerBase64(location);
    for (const s of stanzas) {
      const r = await client.post("/v1/artifacts", {
        digest,
        key: s.name,
        version: s.version,
        labels,
        location,
        stanzaDigest: s.digest,
        ...(header !== undefined ? { header } : {}),
      });
      if (r.status !== 200) client.refused("/v1/artifacts", r);
      ids.push(String(r.body.id));
      say(`registered artifact ${String(r.body.id)} (key ${s.name} v${s.version})`);
    }
  } finally {
    client.close();
  }
  return ids;
}
