/**
 * The operations under dual control. Each names its own Cedar action (authorized for the
 * requester and again for every approver), validates its parameters when it is requested, and
 * re-checks the current state when it finally executes (a key version may have changed, the
 * policy set may have moved on) — an approval is consent to an action, not a snapshot of state.
 */
import { decodeX25519Recipient, wrapX25519 } from "../../keys/x25519.js";
import type { PrincipalContainment } from "../auth/containment.js";
import type { RouteResource } from "../auth/principal.js";
import type { PolicyStore } from "../authz/active.js";
import { Authorizer } from "../authz/cedar.js";
import { ServiceError } from "../errors.js";
import type { KeyService } from "../keys/service.js";
import { checkCustodyRef, type RootCustody } from "../root-custody.js";
import { containOp } from "./contain-op.js";

export const OPERATIONS = ["destroy", "export", "policy", "custody", "contain"] as const;
export type OperationName = (typeof OPERATIONS)[number];

export interface OperationDeps {
  readonly keys: KeyService;
  readonly policies: PolicyStore;
  readonly custody: RootCustody;
  /** Block and revoke a compromised principal (the `contain` operation); absent: 503. */
  readonly contain?: PrincipalContainment;
}

export type Params = Record<string, unknown>;

export interface Executed {
  /** What happened, shown to anyone who may read the request and written to the audit. */
  readonly outcome: Params;
  /** A one-time result for the requester (export's ciphertext): never audited. */
  readonly result?: Params;
}

export interface Operation {
  readonly action: string;
  resources(p: Params): RouteResource[];
  /** Validates and normalises what was requested (400 on anything wrong); `requester`: who asks. */
  prepare(input: Params, deps: OperationDeps, requester?: string): Promise<Params>;
  execute(p: Params, approvalId: string, deps: OperationDeps): Promise<Executed>;
  /** The parameters an audit entry names (no policy text, nothing secret). */
  summary(p: Params): Params;
}

/** Checked again here although the route's schema admits only well-formed requests. */
function bad(message: string): never {
  throw new ServiceError(400, "bad_request", message);
}

/** Schema-valid but unusable (a checksum, a policy that does not validate): 422. */
function unusable(message: string): never {
  throw new ServiceError(422, "unprocessable", message);
}

/** Only `allowed` fields, and the `required` ones present. */
function fields(op: string, input: Params, required: string[], optional: string[] = []): void {
  for (const f of required) if (input[f] === undefined) bad(`${op} needs ${f}`);
  for (const f of Object.keys(input))
    if (f !== "operation" && !required.includes(f) && !optional.includes(f))
      bad(`${op} does not take ${f}`);
}

async function keyVersion(deps: OperationDeps, p: Params): Promise<void> {
  const k = await deps.keys.show(String(p.key));
  if (!k.versions.some((v) => v.version === p.version))
    throw new ServiceError(404, "not_found", `key ${p.key} has no version ${p.version}`);
}

const destroy: Operation = {
  action: "keys:schedule-destroy",
  resources: (p) => [{ key: String(p.key) }],
  async prepare(input, deps) {
    fields("destroy", input, ["key", "version"], ["days"]);
    const p = { key: input.key, version: input.version, days: input.days ?? 7 };
    await keyVersion(deps, p);
    return p;
  },
  async execute(p, _id, deps) {
    // changeVersion re-checks the version's current state (not the primary, not destroyed).
    const r = await deps.keys.changeVersion(
      String(p.key),
      Number(p.version),
      "schedule-destroy",
      Number(p.days),
    );
    return { outcome: { key: p.key, version: p.version, destroyAfter: r.destroyAfter } };
  },
  summary: (p) => ({ key: p.key, version: p.version, days: p.days }),
};

const exportOp: Operation = {
  action: "keys:export",
  resources: (p) => [{ key: String(p.key) }],
  async prepare(input, deps) {
    fields("export", input, ["key", "version", "recipient"]);
    try {
      decodeX25519Recipient(String(input.recipient));
    } catch (e) {
      unusable(`export recipient: ${(e as Error).message} (expected a tseal1... recipient)`);
    }
    const p = { key: input.key, version: input.version, recipient: input.recipient };
    await keyVersion(deps, p);
    return p;
  },
  async execute(p, _id, deps) {
    const pub = decodeX25519Recipient(String(p.recipient));
    // The KEK is sealed exactly like a file key in an `x25519` stanza: the recipient's
    // identity opens it with the project's own code; the service keeps no copy.
    const stanza = await deps.keys.withMaterial(String(p.key), Number(p.version), (kek) =>
      wrapX25519(pub, kek),
    );
    const outcome = { key: p.key, version: p.version, recipient: p.recipient };
    return {
      outcome,
      result: {
        ...outcome,
        stanza: { type: stanza.type, fields: stanza.fields.map((f) => f.toString("base64")) },
      },
    };
  },
  summary: (p) => ({ key: p.key, version: p.version, recipient: p.recipient }),
};

const policy: Operation = {
  action: "policies:update",
  resources: () => ["service"],
  async prepare(input, deps) {
    fields("policy", input, ["files"]);
    const files = input.files as Record<string, string>;
    // Validated against the schema now (400 with Cedar's message) and again at execution.
    const a = Authorizer.fromFiles(files, "the proposed policy set");
    return { files, digest: a.digest, baseVersion: await deps.policies.latestVersion() };
  },
  async execute(p, id, deps) {
    const a = Authorizer.fromFiles(p.files as Record<string, string>, "the proposed policy set");
    const base = Number(p.baseVersion);
    const now = await deps.policies.latestVersion();
    // Approvers consented to a change of a known set: if it moved on, they must look again.
    if (now !== base || !(await deps.policies.install(a, base, id)))
      throw new ServiceError(
        409,
        "conflict",
        `the active policy set changed since this proposal (version ${base}, now ${now}): propose again against the current set`,
      );
    return { outcome: { version: base + 1, digest: a.digest } };
  },
  summary: (p) => ({
    digest: p.digest,
    baseVersion: p.baseVersion,
    files: Object.keys(p.files as Params).sort(),
  }),
};

/** Adds an HSM/KMS key that may hold the service root (root-custody.ts); no key moves here. */
const custody: Operation = {
  action: "root:custody",
  resources: () => ["service"],
  async prepare(input) {
    fields("custody", input, ["custody"]);
    try {
      return { custody: checkCustodyRef(String(input.custody)) };
    } catch (e) {
      return bad((e as Error).message);
    }
  },
  async execute(p, id, deps) {
    const rec = await deps.custody.add(String(p.custody), id, new Date().toISOString());
    return { outcome: { custody: rec.custody, approval: rec.approval } };
  },
  summary: (p) => ({ custody: p.custody }),
};

export const OPERATION: Record<OperationName, Operation> = {
  destroy,
  export: exportOp,
  policy,
  custody,
  contain: containOp,
};
