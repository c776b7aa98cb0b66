/**
 * The doctor's checks load only when `doctor` runs: its registration (what the command tree
 * loads for help and for `doctor` itself, before parsing) loads no module of src/doctor/.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { dirname, join, sep } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const DIST_SRC = join(HERE, "..", "..", "src");

function loadedBy(file: string): string[] {
  const out = execFileSync(
    process.execPath,
    [join(HERE, "..", "package", "loaded-modules.js"), join(DIST_SRC, file)],
    { encoding: "utf8" },
  );
  return JSON.parse(out) as string[];
}

test("the doctor's registration loads no doctor module; its entry point does", () => {
  const doctorDir = `${join(DIST_SRC, "doctor")}${sep}`;
  const tree = loadedBy(join("cli", "commands", "doctor.js"));
  assert.ok(tree.includes(join(DIST_SRC, "cli", "commands", "doctor.js")), "sanity: loaded");
  assert.deepEqual(
    tree.filter((m) => m.startsWith(doctorDir)),
    [],
  );
  const entry = loadedBy(join("doctor", "command.js"));
  assert.ok(entry.includes(join(DIST_SRC, "doctor", "run.js")), "sanity: the hook sees them");
});
