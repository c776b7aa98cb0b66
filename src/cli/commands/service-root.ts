/**
 * `tensorseal service root split`: the service root key as M-of-N Shamir shares (files 0600,
 * never printed), for `serve --root-shares FILE,...`; `service root seal`: the root wrapped by an
 * HSM/KMS key, for `serve --root-sealed FILE`. Both run offline on the root key (file or shares).
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Command } from "commander";
import { printJson } from "../options.js";
import { say } from "../output.js";
import { intFlag, serviceGroup, withClient } from "./service-shared.js";

export function registerServiceRoot(program: Command): void {
  const service = serviceGroup(program);
  const root = service.command("root").description("custody of the service root key");
  registerSeal(root);
  registerVerify(root);
  root
    .command("split")
    .description("split the service root key into N share files, any M of which rebuild it")
    .requiredOption("--root-key-file <file>", "the service root key (32 bytes or 64 hex)")
    .requiredOption("--shares <n>", "number of shares (2..255)")
    .requiredOption("--threshold <m>", "shares needed to rebuild (2..N)")
    .requiredOption("-o, --out <dir>", "directory for share-I.share files (created 0700)")
    .option("--json", "print JSON: {splitId, threshold, files}")
    .addHelpText(
      "after",
      "\nExample:\n  tensorseal service root split --root-key-file root.key --shares 5 --threshold 3 -o shares/\n  tensorseal serve --tls-cert srv.pem --tls-key srv.key --root-shares shares/share-1.share,shares/share-4.share,shares/share-5.share",
    )
    .action(
      async (o: {
        rootKeyFile: string;
        shares: string;
        threshold: string;
        out: string;
        json?: boolean;
      }) => {
        const { formatShare } = await import("../../keys/root-shares.js");
        const { readServiceRootKey, splitServiceRoot } = await import("../../service/index.js");
        const n = intFlag("--shares", o.shares, 2, 255);
        const m = intFlag("--threshold", o.threshold, 2, n);
        const root = await readServiceRootKey(o.rootKeyFile);
        try {
          const shares = await splitServiceRoot(root, n, m);
          await mkdir(o.out, { recursive: true, mode: 0o700 });
          const serve = "tensorseal serve --root-shares FILE,FILE,...";
          const files: string[] = [];
          for (const s of shares) {
            const path = join(o.out, `share-${s.index}.share`);
            // `wx`: never overwrite a share of an earlier split.
            await writeFile(path, formatShare(s, serve), { mode: 0o600, flag: "wx" });
            files.push(path);
            if (!o.json) say(`wrote ${path}`);
          }
          const splitId = shares[0]!.splitId;
          if (o.json) printJson({ splitId, threshold: m, files });
          else
            say(
              `${shares.length} shares, any ${m} rebuild the root (split ${splitId}); hand them to distinct custodians`,
            );
        } finally {
          root.fill(0);
        }
      },
    );
}

/** `service root seal`: from a plain root file (or shares) into an HSM/KMS key's custody. */
function registerSeal(root: Command): void {
  root
    .command("seal")
    .description(
      "wrap the service root key with an HSM or KMS key, for `serve --root-sealed` (the custody must be approved on the service)",
    )
    .requiredOption("--to <ref>", "the custody key: pkcs11:TOKEN/KEY or aws-kms:KEY")
    .requiredOption("-o, --out <file>", "the sealed root file to write (0600, atomically)")
    .option("--root-key-file <file>", "the service root key (32 bytes or 64 hex)")
    .option("--root-shares <files>", "or M-of-N share files (comma-separated)")
    .option("--json", "print JSON: {custody, root, file}")
    .addHelpText(
      "after",
      "\nExamples:\n  TENSORSEAL_PKCS11_PIN=... tensorseal service root seal --root-shares a.share,b.share --to pkcs11:prod-hsm/service-root -o root.sealed\n  tensorseal service approvals request custody --custody pkcs11:prod-hsm/service-root\n  tensorseal serve --tls-cert srv.pem --tls-key srv.key --root-sealed root.sealed",
    )
    .action(
      async (o: {
        to: string;
        out: string;
        rootKeyFile?: string;
        rootShares?: string;
        json?: boolean;
      }) => {
        const { fail } = await import("../../format/errors.js");
        const { readServiceRootKey, recoverServiceRoot, sealServiceRoot } = await import(
          "../../service/index.js"
        );
        if (Boolean(o.rootKeyFile) === Boolean(o.rootShares))
          fail("E_USAGE", "give the root as --root-key-file FILE or --root-shares FILE,FILE,...");
        const key = o.rootKeyFile
          ? await readServiceRootKey(o.rootKeyFile)
          : (await recoverServiceRoot(String(o.rootShares).split(",").filter(Boolean))).root;
        try {
          const sealed = await sealServiceRoot(key, o.to, o.out);
          const out = { custody: sealed.custody, root: sealed.root, file: o.out };
          if (o.json) printJson(out);
          else {
            say(`wrote ${o.out}: the root ${sealed.root} in the custody of ${sealed.custody}`);
            say(
              `before \`serve --root-sealed ${o.out}\` on an existing database, have the custody approved: tensorseal service approvals request custody --custody ${sealed.custody}`,
            );
          }
        } finally {
          key.fill(0);
        }
      },
    );
}

/** `service root shares verify`: a test recovery on the running service, audited there. */
function registerVerify(root: Command): void {
  root
    .command("shares")
    .description("the service root's shares: test recoveries")
    .command("verify")
    .description(
      "test-recover the service root: the service checks in memory that the shares rebuild its root and audits root.shares-verified",
    )
    .argument("<shares...>", "share files from `service root split` (at least the threshold)")
    .option("--json", "print JSON: {verified, split, shares, threshold, total}")
    .addHelpText(
      "after",
      "\nNeeds an admin token (Cedar action root:verify-shares). The shares travel to the service over\nTLS, as Vault's unseal keys do; the answer and the audit name the split and share indices only.\nA failed rehearsal is audited too and exits 6; `doctor --server` reports root.shares-untested.\n\nExample:\n  TENSORSEAL_SERVER_TOKEN_FILE=admin.token tensorseal service root shares verify shares/share-1.share shares/share-3.share",
    )
    .action(async (files: string[], o: { json?: boolean }, cmd: Command) => {
      const { readFile } = await import("node:fs/promises");
      const { fail } = await import("../../format/errors.js");
      const shares: string[] = [];
      for (const f of files)
        shares.push(
          await readFile(f, "utf8").catch((e: NodeJS.ErrnoException) =>
            fail("E_IO", `cannot read the root share file ${f} (${e.code})`),
          ),
        );
      await withClient(cmd, async (c) => {
        const r = await c.post("/v1/root/shares/verify", { shares });
        // 422: the service tried and the shares did not rebuild its root (audited as failed).
        if (r.status === 422)
          fail("E_KEYSTORE", `test recovery failed on ${c.url}: ${String(r.body.message)}`);
        if (r.status !== 200) c.refused("/v1/root/shares/verify", r);
        const b = r.body as { split: string; shares: number[]; threshold: number; total: number };
        if (o.json) printJson(r.body);
        else
          say(
            `shares ${b.shares.join(", ")} of split ${b.split} (any ${b.threshold} of ${b.total}) rebuild the service root of ${c.url}; audited as root.shares-verified`,
          );
      });
    });
}
