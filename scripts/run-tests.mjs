// Runs every compiled test file with node's test runner; its closing lines (pass/fail counts)
// are what CI reads. TENSORSEAL_TEST_FILTER narrows the run to matching file names.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? find(join(dir, e.name))
      : e.name.endsWith(".test.js")
        ? [join(dir, e.name)]
        : [],
  );
}
const filter = process.env.TENSORSEAL_TEST_FILTER ?? "";
const files = find("dist/test")
  .filter((f) => f.includes(filter))
  .sort();
if (files.length === 0) {
  console.error("no test files found under dist/test");
  process.exit(1);
}
const r = spawnSync(process.execPath, ["--test", "--test-reporter=spec", ...files], {
  stdio: "inherit",
});
process.exit(r.status ?? 1);
