/**
 * The `contain` operation (incident response): block principals and revoke their tokens and
 * client certificates (auth/containment.ts). Cedar action `principals:contain` on the Service.
 * Under `serve --approvals contain=2` it waits for a second principal's approval, so that one
 * responder (or one stolen admin token) cannot cut off workloads alone; with M = 1 (default) it
 * runs at once, in the request.
 */
import { normalizeFingerprint } from "../auth/revoked-certs.js";
import { ServiceError } from "../errors.js";
import type { Operation, Params } from "./operations.js";

export const MAX_CONTAIN_PRINCIPALS = 100;
export const MAX_CONTAIN_CERTS = 100;

function bad(message: string): never {
  throw new ServiceError(400, "bad_request", message);
}

export const containOp: Operation = {
  action: "principals:contain",
  resources: () => ["service"],
  async prepare(input, _deps, requester) {
    for (const f of Object.keys(input))
      if (!["operation", "principals", "fingerprints", "reason"].includes(f))
        bad(`contain does not take ${f}`);
    const principals = input.principals;
    if (
      !Array.isArray(principals) ||
      principals.length < 1 ||
      principals.length > MAX_CONTAIN_PRINCIPALS ||
      !principals.every((p) => typeof p === "string" && p.length > 0 && p.length <= 2048)
    )
      bad(`contain needs principals: 1..${MAX_CONTAIN_PRINCIPALS} principal ids`);
    // Like the block route: a principal cannot contain itself (it would lock out the responder):
    // it is left out and named (an endpoint incident where the responder worked too).
    const skipped = requester !== undefined && principals.includes(requester) ? [requester] : [];
    const rest = (principals as string[]).filter((p) => !skipped.includes(p));
    if (rest.length === 0)
      throw new ServiceError(409, "conflict", "a principal cannot contain itself");
    const fps: string[] = [];
    const given = (input.fingerprints ?? []) as unknown[];
    if (!Array.isArray(given) || given.length > MAX_CONTAIN_CERTS)
      bad(`fingerprints: at most ${MAX_CONTAIN_CERTS}`);
    for (const f of given) {
      const fp = typeof f === "string" ? normalizeFingerprint(f) : null;
      if (!fp) bad("a fingerprint is the SHA-256 of the certificate's DER: 64 hex digits");
      fps.push(fp);
    }
    const reason = input.reason === undefined ? "incident containment" : String(input.reason);
    if (reason.length < 1 || reason.length > 500) bad("reason: 1..500 characters");
    return {
      principals: [...new Set(rest)].sort(),
      ...(skipped.length ? { skipped } : {}),
      fingerprints: fps,
      reason,
    };
  },
  async execute(p: Params, id, deps) {
    if (!deps.contain)
      throw new ServiceError(409, "conflict", "containment is not wired on this server");
    const outcomes = [];
    // Fingerprints named by the responder go with the first principal (they are revoked once).
    let fps = p.fingerprints as string[];
    for (const principal of p.principals as string[]) {
      outcomes.push(await deps.contain.contain(principal, `${p.reason} (${id})`, fps));
      fps = [];
    }
    return { outcome: { contained: outcomes, ...(p.skipped ? { skipped: p.skipped } : {}) } };
  },
  summary: (p) => ({
    principals: p.principals,
    ...(p.skipped ? { skipped: p.skipped } : {}),
    fingerprints: (p.fingerprints as string[] | undefined)?.length ?? 0,
    reason: p.reason,
  }),
};
