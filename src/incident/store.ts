/**
 * Incident records on disk: `$TENSORSEAL_HOME/incidents/ID.json` (mode 0600), each change
 * written to a temporary file, fsynced and renamed over the old one (engine writeFileAtomic),
 * so a crash leaves the record before or after a change, never half of one.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../engine/index.js";
import { fail } from "../format/errors.js";
import { printable } from "../format/printable.js";
import type { Incident } from "./types.js";

const ID = /^inc-[0-9]{8}-[0-9a-f]{8}$/;

export function incidentsDir(home: string): string {
  return join(home, "incidents");
}

export function newIncidentId(now: Date): string {
  const day = now.toISOString().slice(0, 10).replaceAll("-", "");
  return `inc-${day}-${randomBytes(4).toString("hex")}`;
}

export function checkId(id: string): string {
  if (!ID.test(id))
    fail(
      "E_USAGE",
      `${JSON.stringify(printable(id.slice(0, 80)))} is not an incident id (inc-YYYYMMDD-xxxxxxxx): see \`tensorseal incident list\``,
    );
  return id;
}

/** Paths of an incident's own files (record, reseal and rewrap journals). */
export function incidentPath(home: string, id: string, suffix = ".json"): string {
  return join(incidentsDir(home), `${checkId(id)}${suffix}`);
}

export async function saveIncident(home: string, inc: Incident): Promise<void> {
  await mkdir(incidentsDir(home), { recursive: true, mode: 0o700 });
  await writeFileAtomic(incidentPath(home, inc.id), `${JSON.stringify(inc, null, 2)}\n`);
}

export async function loadIncident(home: string, id: string): Promise<Incident> {
  const path = incidentPath(home, id);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === "ENOENT"
      ? fail(
          "E_USAGE",
          `no incident ${id} in ${incidentsDir(home)}: see \`tensorseal incident list\``,
        )
      : fail("E_IO", `cannot read ${path}: ${code}`, e);
  }
  let inc: Incident;
  try {
    inc = JSON.parse(text) as Incident;
  } catch (e) {
    return fail("E_IO", `${path} is not an incident record (invalid JSON)`, e);
  }
  if (inc.format !== "tensorseal-incident" || inc.v !== 1 || inc.id !== id)
    fail("E_IO", `${path} is not an incident record of this version`);
  return inc;
}

export async function listIncidents(home: string): Promise<Incident[]> {
  const names = await readdir(incidentsDir(home)).catch(() => [] as string[]);
  const out: Incident[] = [];
  for (const n of names.sort()) {
    const id = n.endsWith(".json") ? n.slice(0, -5) : "";
    if (ID.test(id)) out.push(await loadIncident(home, id));
  }
  return out;
}
