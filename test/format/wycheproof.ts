/** Loader for the Wycheproof JSON files in test/fixtures/wycheproof (see SOURCE.md there). */
import { readFileSync } from "node:fs";

export interface WycheproofFile<T> {
  readonly algorithm: string;
  readonly numberOfTests: number;
  readonly testGroups: readonly (Record<string, unknown> & { readonly tests: readonly T[] })[];
}

export interface WycheproofTest {
  readonly tcId: number;
  readonly comment: string;
  readonly flags: readonly string[];
  readonly result: "valid" | "invalid" | "acceptable";
}

/** dist/test/format/*.js -> repository root -> test/fixtures/wycheproof. */
const DIR = new URL("../../../test/fixtures/wycheproof/", import.meta.url);

/** aes_gcm_test.json */
export interface AesGcmTest extends WycheproofTest {
  key: string;
  iv: string;
  aad: string;
  msg: string;
  ct: string;
  tag: string;
}

/** hmac_sha*_test.json */
export interface MacTest extends WycheproofTest {
  key: string;
  msg: string;
  tag: string;
}

/** x25519_test.json */
export interface XdhTest extends WycheproofTest {
  public: string;
  private: string;
  shared: string;
}

export function loadWycheproof<T extends WycheproofTest>(name: string): WycheproofFile<T> {
  const file = JSON.parse(readFileSync(new URL(name, DIR), "utf8")) as WycheproofFile<T>;
  const total = file.testGroups.reduce((n, g) => n + g.tests.length, 0);
  // A file that parsed to nothing must not pass silently.
  if (total === 0 || total !== file.numberOfTests) {
    throw new Error(`${name}: ${total} tests in groups, numberOfTests says ${file.numberOfTests}`);
  }
  return file;
}

export function hex(s: string): Buffer {
  return Buffer.from(s, "hex");
}
