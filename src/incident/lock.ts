/**
 * One process at a time per incident: `ID.lock` beside the record, created exclusively with
 * the holder's pid. A lock whose process is gone (SIGKILL, a crash) is taken over, so a crash
 * never blocks the rerun that finishes its work; a live holder is refused by name.
 */
import { open, readFile, rm } from "node:fs/promises";
import { fail } from "../format/errors.js";
import { incidentPath } from "./store.js";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export async function withIncidentLock<T>(
  home: string,
  id: string,
  fn: () => Promise<T>,
): Promise<T> {
  const path = incidentPath(home, id, ".lock");
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(path, "wx", 0o600);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT")
        fail("E_USAGE", `no incident ${id} in this home: see \`tensorseal incident list\``);
      if (code !== "EEXIST" || attempt > 0) throw e;
      const pid = Number.parseInt(await readFile(path, "utf8").catch(() => ""), 10);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid))
        fail(
          "E_USAGE",
          `incident ${id} is being worked on by process ${pid}: wait for it, or end it first`,
        );
      await rm(path, { force: true }); // its holder is gone: take it over
    }
  }
  try {
    return await fn();
  } finally {
    await rm(path, { force: true });
  }
}
