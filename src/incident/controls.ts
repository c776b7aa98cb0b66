/**
 * One interface over the two places a key lives: the local keystore and the key service. The
 * playbook steps (contain.ts, eradicate.ts) are written once against it. Every method checks
 * the present state first, so a rerun after a crash does nothing twice.
 */
import { fail } from "../format/errors.js";
import type { Keystore } from "../keys/keystore.js";
import type { ServiceClient } from "../keys/service/client.js";
import type { Outcome } from "./journal.js";

export interface VersionView {
  readonly version: number;
  readonly state: string;
}

export interface KeyView {
  readonly primary: number;
  readonly minDecryption: number;
  readonly versions: readonly VersionView[];
}

export interface KeyControl {
  /** Stanza type of this place's keys. */
  readonly type: "kek" | "service";
  readonly serverId?: string;
  key(name: string): Promise<KeyView>;
  rotate(name: string): Promise<number>;
  disable(name: string, version: number): Promise<void>;
  setMinDecryption(name: string, min: number): Promise<void>;
  /** Scheduled at once, or (key service under dual control) an approval to wait for. */
  scheduleDestroy(name: string, version: number, days: number): Promise<Outcome>;
  /** The present state of an approval this control asked for (key service only). */
  approval(id: string): Promise<Outcome>;
}

const gone = (s: string) =>
  s === "scheduled_for_destruction" || s === "scheduled" || s === "destroyed";

export function localControl(ks: Keystore): KeyControl {
  const view = async (name: string): Promise<KeyView> => {
    await ks.refresh();
    const k = ks.showKey(name);
    return {
      primary: k.primaryVersion,
      minDecryption: k.minDecryptionVersion,
      versions: k.versions.map((v) => ({ version: v.version, state: v.state })),
    };
  };
  return {
    type: "kek",
    key: view,
    rotate: async (name) => (await ks.rotateKey(name)).primaryVersion,
    async disable(name, version) {
      const v = (await view(name)).versions.find((x) => x.version === version);
      if (v?.state === "enabled") await ks.disableVersion(name, version);
    },
    async setMinDecryption(name, min) {
      if ((await view(name)).minDecryption < min)
        await ks.setKey(name, { minDecryptionVersion: min });
    },
    async scheduleDestroy(name, version, days) {
      const v = (await view(name)).versions.find((x) => x.version === version);
      if (v && !gone(v.state)) await ks.scheduleDestroy(name, version, days);
      return { detail: { days } };
    },
    approval: async () => fail("E_USAGE", "the local keystore has no approvals"),
  };
}

/** An approval request's state as a step outcome: executed, waiting, or a failure. */
export function approvalOutcome(b: Record<string, unknown>): Outcome {
  const approval = {
    id: String(b.id ?? b.approval),
    state: String(b.state),
    ...(typeof b.required === "number" ? { required: b.required } : {}),
    ...(Array.isArray(b.approvers) ? { approvers: b.approvers.map(String) } : {}),
  };
  if (approval.state === "executed") return { approval };
  if (approval.state === "pending" || approval.state === "executing")
    return { approval, waiting: true };
  return fail(
    "E_PROVIDER",
    `approval ${approval.id} ended ${approval.state}: nothing was done; rerun the step to ask again`,
  );
}

export function serviceControl(c: ServiceClient, serverId: string): KeyControl {
  const path = (name: string) => `/v1/keys/${encodeURIComponent(name)}`;
  const ok = async (
    p: Promise<{ status: number; body: Record<string, unknown> }>,
    where: string,
  ) => {
    const r = await p;
    if (r.status !== 200 && r.status !== 202) c.refused(where, r);
    return r;
  };
  const view = async (name: string): Promise<KeyView> => {
    const r = await ok(c.get(path(name)), path(name));
    const b = r.body as {
      primaryVersion?: number;
      primary?: number;
      minDecryptionVersion?: number;
      versions?: { version: number; state: string }[];
    };
    return {
      primary: Number(b.primaryVersion ?? b.primary),
      minDecryption: Number(b.minDecryptionVersion ?? 1),
      versions: (b.versions ?? []).map((v) => ({ version: v.version, state: v.state })),
    };
  };
  return {
    type: "service",
    serverId,
    key: view,
    async rotate(name) {
      const r = await ok(c.post(`${path(name)}/rotate`, {}), `${path(name)}/rotate`);
      return Number(
        (r.body as { primaryVersion?: number }).primaryVersion ?? (await view(name)).primary,
      );
    },
    async disable(name, version) {
      const v = (await view(name)).versions.find((x) => x.version === version);
      if (v?.state !== "enabled") return;
      const p = `${path(name)}/versions/${version}/disable`;
      await ok(c.post(p, {}), p);
    },
    async setMinDecryption(name, min) {
      if ((await view(name)).minDecryption >= min) return;
      await ok(c.patch(path(name), { minDecryptionVersion: min }), path(name));
    },
    async scheduleDestroy(name, version, days) {
      const v = (await view(name)).versions.find((x) => x.version === version);
      if (v && gone(v.state)) return { detail: { days, already: v.state } };
      const p = `${path(name)}/versions/${version}/schedule-destroy`;
      const r = await ok(c.post(p, { days }), p);
      if (r.status === 202) return { ...approvalOutcome(r.body), detail: { days } };
      return { detail: { days } };
    },
    async approval(id) {
      const p = `/v1/approvals/${encodeURIComponent(id)}`;
      const r = await ok(c.get(p), p);
      return approvalOutcome(r.body);
    },
  };
}
