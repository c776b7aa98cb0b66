import assert from "node:assert/strict";
import test from "node:test";
import { parsePairs } from "../../src/cli/options.js";

test("parsePairs: KEY=VALUE pairs, the first = splits, inherited names are ordinary keys", () => {
  const r = parsePairs(["constructor=x", "a=b=c", "__proto__=p", "empty="], "--label");
  assert.deepEqual(Object.keys(r), ["constructor", "a", "__proto__", "empty"]);
  assert.equal(r.constructor, "x");
  assert.equal(r.a, "b=c");
  assert.equal(Object.getOwnPropertyDescriptor(r, "__proto__")?.value, "p");
  assert.equal(r.empty, "");
});

test("parsePairs: a repeated key or a missing key is a usage error", () => {
  for (const bad of [["a=1", "a=2"], ["=x"], ["novalue"]]) {
    assert.throws(() => parsePairs(bad, "--label"), { code: "E_USAGE" }, bad.join(" "));
  }
});
