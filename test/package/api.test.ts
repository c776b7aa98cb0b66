/**
 * The public API is what docs/LIBRARY.md's reference lists: the two entries export exactly those
 * names (values and types, read from the emitted declarations with the TypeScript compiler),
 * and the runtime module exports exactly the declared values.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const ENTRIES = { tensorseal: "dist/src/index.d.ts", "tensorseal/onnx": "dist/src/onnx.d.ts" };

interface Names {
  values: string[];
  types: string[];
}

const program = ts.createProgram(
  Object.values(ENTRIES).map((d) => join(REPO, d)),
  { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext },
);
const checker = program.getTypeChecker();

/** Exported names of a declaration file, split into values (incl. classes) and type-only names. */
function declared(dts: string): Names {
  const source = program.getSourceFile(join(REPO, dts));
  const mod = source && checker.getSymbolAtLocation(source);
  assert.ok(mod, `${dts} is a module`);
  const out: Names = { values: [], types: [] };
  for (const s of checker.getExportsOfModule(mod)) {
    const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
    (target.flags & ts.SymbolFlags.Value ? out.values : out.types).push(s.name);
  }
  return { values: out.values.sort(), types: out.types.sort() };
}

/** The names docs/LIBRARY.md's reference lists: first cells of the values table, the types list. */
function documented(): Names {
  const doc = readFileSync(join(REPO, "docs", "LIBRARY.md"), "utf8");
  const ref = doc.slice(doc.indexOf("\n## Reference"));
  const names = (text: string) =>
    [...text.matchAll(/`([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!);
  const values = ref
    .split("\n")
    .filter((l) => l.startsWith("| `"))
    .flatMap((l) => names(l.split("|")[1]!));
  const typesText = ref.slice(
    ref.indexOf("\nTypes:"),
    ref.indexOf("\n\n", ref.indexOf("\nTypes:")),
  );
  return { values: [...new Set(values)].sort(), types: [...new Set(names(typesText))].sort() };
}

test("docs/LIBRARY.md lists exactly what tensorseal and tensorseal/onnx export", () => {
  const doc = documented();
  const api: Names = { values: [], types: [] };
  for (const dts of Object.values(ENTRIES)) {
    const d = declared(dts);
    api.values.push(...d.values);
    api.types.push(...d.types);
  }
  assert.deepEqual(api.values.sort(), doc.values, "values: exported vs documented");
  assert.deepEqual(api.types.sort(), doc.types, "types: exported vs documented");
});

test("each entry's runtime exports are exactly its declared values", async () => {
  for (const [specifier, dts] of Object.entries(ENTRIES)) {
    const runtime = Object.keys(await import(specifier)).sort();
    assert.deepEqual(runtime, declared(dts).values, specifier);
  }
});
