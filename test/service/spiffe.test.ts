/** SPIFFE ID parsing, the --mtls-roles file, the SAN reader and serve's mTLS flag checks. */
import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parseSpiffeId, SpiffeRoles } from "../../src/service/index.js";
import { certificate } from "../../src/service/tls/der.js";
import { uriSubjectAltNames } from "../../src/service/tls/der-read.js";
import { assertServeRefuses } from "../cli/helpers.js";

test("parseSpiffeId accepts workload IDs and refuses everything the spec forbids", () => {
  for (const ok of [
    "spiffe://example.org/ns/ml/sa/loader",
    "spiffe://a-b_c.d9/x",
    "spiffe://td/A.b-C_9/..x/x..",
  ])
    assert.equal((parseSpiffeId(ok) as { id: string }).id, ok, ok);
  for (const bad of [
    "spiffe://example.org", // a trust domain, not a workload
    "spiffe://example.org/",
    "SPIFFE://example.org/x",
    "spiffe:/example.org/x",
    "https://example.org/x",
    "spiffe://Example.org/x",
    "spiffe://user@example.org/x",
    "spiffe://example.org:443/x",
    "spiffe:///x",
    "spiffe://example.org//x",
    "spiffe://example.org/x/",
    "spiffe://example.org/./x",
    "spiffe://example.org/x/..",
    "spiffe://example.org/x?q=1",
    "spiffe://example.org/x#f",
    "spiffe://example.org/x%2Fy",
    "spiffe://example.org/x y",
    "spiffe://exämple.org/x",
    `spiffe://example.org/${"a".repeat(2040)}`,
    `spiffe://${"a".repeat(256)}/x`,
  ])
    assert.ok("invalid" in parseSpiffeId(bad), bad);
});

test("--mtls-roles: exact IDs and /* prefixes at segment boundaries, union; malformed refused", () => {
  const r = SpiffeRoles.parse(
    JSON.stringify({
      "spiffe://td/ns/ml/sa/a": ["unwrap"],
      "spiffe://td/ns/ml/*": ["wrap", "unwrap"],
      "spiffe://td/*": ["reader"],
    }),
    "f",
  );
  assert.deepEqual(r.rolesOf("spiffe://td/ns/ml/sa/a"), ["reader", "unwrap", "wrap"]);
  assert.deepEqual(r.rolesOf("spiffe://td/ns/mlx/sa/a"), ["reader"]);
  assert.deepEqual(r.rolesOf("spiffe://other/ns/ml/sa/a"), []);
  for (const bad of [
    "[]",
    "{",
    '{"spiffe://td/a": "unwrap"}',
    '{"spiffe://td/a": [""]}',
    '{"spiffe://td/a": ["x y"]}',
    '{"spiffe://TD/a": ["unwrap"]}',
    '{"spiffe://td/a*": ["unwrap"]}',
    '{"spiffe://td/../*": ["unwrap"]}',
    '{"spiffe://td": ["unwrap"]}',
  ])
    assert.throws(() => SpiffeRoles.parse(bad, "f"), /f/, bad);
});

test("the SAN reader returns exactly the URI entries, in order", () => {
  const k = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const der = certificate({
    serial: randomBytes(8),
    subject: "s",
    issuer: "s",
    notBefore: new Date(),
    notAfter: new Date(Date.now() + 1000),
    publicKey: k.publicKey,
    issuerPublicKey: k.publicKey,
    signingKey: k.privateKey,
    ca: false,
    dns: ["uri.example"],
    uris: ["spiffe://td/a", "spiffe://td/b"],
    usage: "client",
  });
  assert.deepEqual(uriSubjectAltNames(der), ["spiffe://td/a", "spiffe://td/b"]);
  assert.throws(() => uriSubjectAltNames(der.subarray(0, 40)));
});

test("serve refuses mTLS options without --client-ca and malformed mTLS files (exit 2)", () => {
  const dir = mkdtempSync(join(tmpdir(), "tensorseal-spiffe-"));
  try {
    writeFileSync(join(dir, "roles.json"), '{"spiffe://td/x": "admin"}');
    writeFileSync(join(dir, "empty.pem"), "nothing\n");
    assertServeRefuses(join(dir, "home"), [
      [["--mtls-roles", join(dir, "roles.json")], /need --client-ca/],
      [["--spiffe-trust-domain", "td"], /need --client-ca/],
      [["--client-ca", join(dir, "empty.pem")], /no PEM certificate/],
      [["--client-ca", join(dir, "missing.pem")], /ENOENT/],
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
