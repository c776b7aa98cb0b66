/**
 * The inventory as a CycloneDX 1.6 CBOM. The BOM (components, properties, dependencies,
 * metadata) is built with @cyclonedx/cyclonedx-library's model and normalized by its JSON
 * normalizer; the model of 10.3.0 has no `cryptoProperties` (the 1.6 CBOM field), so they are
 * added to the normalized components by bom-ref, as the 1.6 schema defines them (the tests
 * validate the result with the library's strict 1.6 validator). No key material is read or
 * written: keys are described by name, version, state and provider.
 */
import { Enums, Models, Serialize, Spec } from "@cyclonedx/cyclonedx-library";
import { keyId } from "./build.js";
import type { ArtifactEntry, Inventory, KeyEntry, Protector } from "./model.js";
import { protector } from "./table.js";

type CryptoProperties = Record<string, unknown> & { assetType: string };

const ALG = {
  aesGcm: "crypto/algorithm/aes-256-gcm",
  hkdf512: "crypto/algorithm/hkdf-sha-512",
  hkdf256: "crypto/algorithm/hkdf-sha-256",
  hpkeX25519: "crypto/algorithm/hpke-dhkem-x25519",
  xwing: "crypto/algorithm/x-wing",
  scrypt: "crypto/algorithm/scrypt",
} as const;

interface Algorithm {
  readonly ref: string;
  readonly name: string;
  readonly props: CryptoProperties;
  /** The algorithms this one is built from (HPKE: its KDF and AEAD). */
  readonly uses?: readonly (keyof typeof ALG)[];
}

const ALGORITHMS: Record<keyof typeof ALG, Algorithm> = {
  aesGcm: {
    ref: ALG.aesGcm,
    name: "AES-256-GCM",
    props: {
      assetType: "algorithm",
      algorithmProperties: {
        primitive: "ae",
        parameterSetIdentifier: "256",
        mode: "gcm",
        executionEnvironment: "software-plain-ram",
        cryptoFunctions: ["encrypt", "decrypt", "tag"],
        classicalSecurityLevel: 256,
        nistQuantumSecurityLevel: 5,
      },
      oid: "2.16.840.1.101.3.4.1.46",
    },
  },
  hkdf512: {
    ref: ALG.hkdf512,
    name: "HKDF-SHA-512",
    props: {
      assetType: "algorithm",
      algorithmProperties: {
        primitive: "kdf",
        parameterSetIdentifier: "SHA-512",
        cryptoFunctions: ["keyderive"],
        classicalSecurityLevel: 256,
      },
    },
  },
  hkdf256: {
    ref: ALG.hkdf256,
    name: "HKDF-SHA-256",
    props: {
      assetType: "algorithm",
      algorithmProperties: {
        primitive: "kdf",
        parameterSetIdentifier: "SHA-256",
        cryptoFunctions: ["keyderive"],
        classicalSecurityLevel: 128,
      },
    },
  },
  hpkeX25519: {
    ref: ALG.hpkeX25519,
    name: "HPKE DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM",
    props: {
      assetType: "algorithm",
      algorithmProperties: {
        primitive: "kem",
        curve: "x25519",
        cryptoFunctions: ["encapsulate", "decapsulate"],
        classicalSecurityLevel: 128,
        nistQuantumSecurityLevel: 0,
      },
    },
    uses: ["hkdf256", "aesGcm"],
  },
  xwing: {
    ref: ALG.xwing,
    name: "HPKE X-Wing (ML-KEM-768 + X25519), HKDF-SHA256, AES-256-GCM",
    props: {
      assetType: "algorithm",
      algorithmProperties: {
        primitive: "kem",
        parameterSetIdentifier: "ML-KEM-768",
        curve: "x25519",
        cryptoFunctions: ["encapsulate", "decapsulate"],
        classicalSecurityLevel: 128,
        nistQuantumSecurityLevel: 3,
      },
    },
    uses: ["hkdf256", "aesGcm"],
  },
  scrypt: {
    ref: ALG.scrypt,
    name: "scrypt",
    props: {
      assetType: "algorithm",
      algorithmProperties: { primitive: "kdf", cryptoFunctions: ["keyderive"] },
    },
  },
};

const TLS_REF = "crypto/protocol/tls";

/** CycloneDX 1.6 key states for the keystore's and the service's lifecycle states. */
const STATES: Record<string, string> = {
  enabled: "active",
  disabled: "suspended",
  scheduled: "deactivated",
  scheduled_for_destruction: "deactivated",
  destroyed: "destroyed",
};

/** The algorithms that wrap a file key for this kind of protector. */
function algorithmsOf(p: Protector | KeyEntry["provider"]): (keyof typeof ALG)[] {
  const kind = typeof p === "string" ? p : p.kind;
  switch (kind) {
    case "kek":
    case "keystore":
    case "service":
      return ["aesGcm"];
    case "x25519":
      return ["hpkeX25519"];
    case "mlkem768x25519":
      return ["xwing"];
    case "passphrase":
      return ["scrypt", "aesGcm"];
    default:
      return [];
  }
}

function keyRef(provider: string, scope: string | null, name: string, version: number | null) {
  const v = version === null ? "" : `@v${version}`;
  return `crypto/key/${provider}/${encodeURIComponent(scope ?? "-")}/${encodeURIComponent(name)}${v}`;
}

export function toCbom(inv: Inventory, toolVersion: string, serial: string): object {
  const bom = new Models.Bom({ serialNumber: serial });
  bom.metadata.timestamp = new Date(inv.generated);
  bom.metadata.tools.components.add(
    new Models.Component(Enums.ComponentType.Application, "tensorseal", { version: toolVersion }),
  );
  const crypto = new Map<string, CryptoProperties>();
  const components = new Map<string, InstanceType<typeof Models.Component>>();
  const add = (
    ref: string,
    type: Enums.ComponentType,
    name: string,
    op: { version?: string; props?: CryptoProperties; properties?: [string, string][] } = {},
  ) => {
    const existing = components.get(ref);
    if (existing) return existing;
    const c = new Models.Component(type, name, {
      bomRef: ref,
      ...(op.version !== undefined ? { version: op.version } : {}),
    });
    for (const [n, v] of op.properties ?? []) c.properties.add(new Models.Property(n, v));
    components.set(ref, c);
    bom.components.add(c);
    if (op.props) crypto.set(ref, op.props);
    return c;
  };
  const algorithm = (k: keyof typeof ALG): InstanceType<typeof Models.Component>["bomRef"] => {
    const a = ALGORITHMS[k];
    const c = add(a.ref, Enums.ComponentType.CryptographicAsset, a.name, { props: a.props });
    for (const u of a.uses ?? []) c.dependencies.add(algorithm(u));
    return c.bomRef;
  };
  const tls = () => {
    const c = add(TLS_REF, Enums.ComponentType.CryptographicAsset, "TLS (key service)", {
      props: { assetType: "protocol", protocolProperties: { type: "tls" } },
      ...(inv.server ? { properties: [["tensorseal:server", inv.server]] } : {}),
    });
    return c.bomRef;
  };

  // Every payload: AES-256-GCM under keys derived with HKDF-SHA-512 (suite 1).
  const payload = [algorithm("aesGcm"), algorithm("hkdf512")];

  for (const k of inv.keys) for (const v of k.versions) keyVersion(k, v);
  function keyVersion(k: KeyEntry, v: KeyEntry["versions"][number]) {
    const ref = keyRef(k.provider, k.scope, k.name, v.version);
    const isPublic = k.provider === "x25519" || k.provider === "mlkem768x25519";
    const algs = algorithmsOf(k.provider);
    const state = v.state !== null && Object.hasOwn(STATES, v.state) ? STATES[v.state] : undefined;
    const created = v.created === null ? Number.NaN : Date.parse(v.created);
    const material: Record<string, unknown> = {
      type: isPublic ? "public-key" : "secret-key",
      id: `${k.provider}:${k.scope === null ? "" : `${k.scope}:`}${k.name}${v.version === null ? "" : `@v${v.version}`}`,
      ...(state ? { state } : {}),
      ...(algs[0] ? { algorithmRef: ALGORITHMS[algs[0]].ref } : {}),
      ...(Number.isNaN(created) ? {} : { creationDate: new Date(created).toISOString() }),
      ...(k.provider === "keystore" || k.provider === "service" ? { size: 256 } : {}),
    };
    const properties: [string, string][] = [
      ["tensorseal:provider", k.provider],
      ["tensorseal:files", String(v.files)],
    ];
    if (k.scope !== null) properties.push(["tensorseal:provider-scope", k.scope]);
    if (k.tier) properties.push(["tensorseal:tier", k.tier]);
    if (k.owner) properties.push(["tensorseal:owner", k.owner]);
    if (k.purpose) properties.push(["tensorseal:purpose", k.purpose]);
    if (v.state !== null) properties.push(["tensorseal:state", v.state]);
    if (!k.listed) properties.push(["tensorseal:listed", "false"]);
    if (v.version !== null && v.version === k.primaryVersion) {
      properties.push(["tensorseal:primary", "true"]);
      if (k.rotationDue) properties.push(["tensorseal:rotation-due", k.rotationDue]);
      if (k.rotationOverdue) properties.push(["tensorseal:rotation-overdue", "true"]);
    }
    const c = add(ref, Enums.ComponentType.CryptographicAsset, k.name, {
      ...(v.version !== null ? { version: String(v.version) } : {}),
      props: { assetType: "related-crypto-material", relatedCryptoMaterialProperties: material },
      properties,
    });
    for (const a of algs) c.dependencies.add(algorithm(a));
    // A passphrase keystore's root (which wraps every key in it) is derived with scrypt.
    if (k.provider === "keystore" && k.listed && inv.keystore?.root === "passphrase")
      c.dependencies.add(algorithm("scrypt"));
    if (k.provider === "service" && inv.server?.startsWith("https:")) c.dependencies.add(tls());
  }

  for (const [n, a] of inv.artifacts.entries()) artifact(a, n);
  function artifact(a: ArtifactEntry, n: number) {
    const ref = a.file
      ? `artifact/file/${encodeURI(a.file)}`
      : `artifact/registry/${a.registry[0]?.id ?? n}`;
    const properties: [string, string][] = [];
    if (a.headerDigest) properties.push(["tensorseal:header-digest", a.headerDigest]);
    if (a.plaintextLength !== null)
      properties.push(["tensorseal:plaintext-size", String(a.plaintextLength)]);
    if (a.contentType) properties.push(["tensorseal:content-type", a.contentType]);
    // A public-tier file: AES-256-GCM only authenticates it (GMAC tags), the bytes are plain.
    if (a.encrypted === false) properties.push(["tensorseal:encrypted", "false"]);
    if (a.tier) properties.push(["tensorseal:tier", a.tier]);
    if (a.purpose) properties.push(["tensorseal:purpose", a.purpose]);
    if (a.owner) properties.push(["tensorseal:owner", a.owner]);
    for (const [k, v] of Object.entries(a.context ?? {}))
      properties.push([`tensorseal:context:${k}`, v]);
    for (const [k, v] of Object.entries(a.labels)) properties.push([`tensorseal:label:${k}`, v]);
    for (const r of a.recipients) properties.push(["tensorseal:recipient", r]);
    for (const r of a.registry) {
      properties.push(["tensorseal:artifact-id", r.id]);
      properties.push(["tensorseal:plaintext-digest", r.digest]);
    }
    if (a.lastRelease)
      properties.push([
        "tensorseal:last-release",
        `${a.lastRelease.ts} ${a.lastRelease.principal ?? ""}`.trim(),
      ]);
    for (const p of a.protectors)
      if (p.kind !== "passphrase" && !keyId(p) && !(p.kind === "other" && p.type === "public"))
        properties.push(["tensorseal:unknown-recipient", protector(p)]);
    const c = add(
      ref,
      a.file ? Enums.ComponentType.File : Enums.ComponentType.Data,
      a.file ?? a.registry[0]?.id ?? "artifact",
      { properties },
    );
    // Files carry the payload suite; a registry entry not found on disk is only known by its key.
    if (a.file) for (const r of payload) c.dependencies.add(r);
    for (const p of a.protectors) {
      if (p.kind === "passphrase") {
        const pw = add(
          "crypto/key/passphrase",
          Enums.ComponentType.CryptographicAsset,
          "passphrase",
          {
            props: {
              assetType: "related-crypto-material",
              relatedCryptoMaterialProperties: { type: "password", algorithmRef: ALG.scrypt },
            },
          },
        );
        for (const x of algorithmsOf(p)) pw.dependencies.add(algorithm(x));
        c.dependencies.add(pw.bomRef);
        continue;
      }
      const id = keyId(p);
      if (!id) continue;
      const kref = keyRef(id.provider, id.scope, id.name, id.version);
      const kc = components.get(kref);
      if (kc) c.dependencies.add(kc.bomRef);
    }
  }

  const serializer = new Serialize.JSON.Normalize.Factory(Spec.Spec1dot6).makeForBom();
  const normalized = serializer.normalize(bom, { sortLists: true }) as unknown as {
    components?: { "bom-ref"?: string; cryptoProperties?: CryptoProperties }[];
  };
  for (const c of normalized.components ?? []) {
    const p = c["bom-ref"] ? crypto.get(c["bom-ref"]) : undefined;
    if (p) c.cryptoProperties = p;
  }
  return normalized;
}
