/**
 * Incidents on the key service: open one, add notes to its timeline, close it, page through
 * them newest first. The shapes are the responder's (src/incident/types.ts: Scope, Severity);
 * the service keeps the part a console shows — title, scope, summary, timeline, resolution —
 * while the playbook's journal stays with `tensorseal incident` (docs/DECISIONS.md).
 */
import { randomBytes } from "node:crypto";
import type { Scope, Severity } from "../../incident/types.js";
import { pageOf } from "../db/page.js";
import type { Database, IncidentsTable } from "../db/schema.js";
import { writeTransaction } from "../db/write-transaction.js";

export interface IncidentNote {
  readonly id: string;
  readonly at: string;
  readonly author: string;
  readonly text: string;
}

export interface ServiceIncident {
  readonly id: string;
  readonly title: string;
  readonly severity: Severity;
  readonly state: "open" | "closed";
  readonly scope: Scope[];
  readonly summary: string;
  readonly opened: string;
  readonly openedBy: string;
  readonly closed?: string;
  readonly closedBy?: string;
  readonly resolution?: string;
}

export interface OpenIncident {
  readonly id?: string;
  readonly title: string;
  readonly severity: Severity;
  readonly scope: Scope[];
  readonly summary: string;
}

/** The responder's id format (incident/store.ts), so a mirrored incident keeps its id. */
export function newServiceIncidentId(now: Date): string {
  return `inc-${now.toISOString().slice(0, 10).replaceAll("-", "")}-${randomBytes(4).toString("hex")}`;
}

/** Page position: the last row's (opened, id), base64url; a made-up one only moves the start. */
function encodeCursor(opened: string, id: string): string {
  return Buffer.from(JSON.stringify([opened, id]), "utf8").toString("base64url");
}

function decodeCursor(c: string): [string, string] | null {
  try {
    const v = JSON.parse(Buffer.from(c, "base64url").toString("utf8")) as unknown;
    return Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === "string")
      ? [String(v[0]), String(v[1])]
      : null;
  } catch {
    return null;
  }
}

export class IncidentRepo {
  constructor(
    private readonly d: Database,
    private readonly now: () => number,
  ) {}

  /** A new id on this service's clock (the date in it is the day it is opened). */
  newId(): string {
    return newServiceIncidentId(new Date(this.now()));
  }

  /** Opens an incident; null when one with the same id exists already. */
  async open(o: OpenIncident, by: string): Promise<ServiceIncident | null> {
    const at = new Date(this.now());
    const row: IncidentsTable = {
      id: o.id ?? newServiceIncidentId(at),
      title: o.title,
      severity: o.severity,
      state: "open",
      scope: JSON.stringify(o.scope),
      summary: o.summary,
      opened: at.toISOString(),
      opened_by: by,
      closed: null,
      closed_by: null,
      resolution: null,
    };
    const r = await this.d.db
      .insertInto("incidents")
      .values(row)
      .onConflict((oc) => oc.column("id").doNothing())
      .returning("id")
      .executeTakeFirst();
    return r ? fromRow(row) : null;
  }

  async get(id: string): Promise<ServiceIncident | null> {
    const r = await this.d.db
      .selectFrom("incidents")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirst();
    return r ? fromRow(r) : null;
  }

  async notes(id: string): Promise<IncidentNote[]> {
    return this.d.db
      .selectFrom("incident_notes")
      .select(["id", "at", "author", "text"])
      .where("incident_id", "=", id)
      .orderBy("at")
      .orderBy("id")
      .execute();
  }

  /** Adds a note to an open incident: "missing", "closed" or the note. */
  async note(id: string, text: string, by: string): Promise<IncidentNote | "missing" | "closed"> {
    return writeTransaction(this.d, async (trx) => {
      const inc = await trx
        .selectFrom("incidents")
        .select("state")
        .where("id", "=", id)
        .executeTakeFirst();
      if (!inc) return "missing";
      if (inc.state !== "open") return "closed";
      const note = {
        id: `note-${randomBytes(8).toString("hex")}`,
        at: new Date(this.now()).toISOString(),
        author: by,
        text,
      };
      await trx
        .insertInto("incident_notes")
        .values({ ...note, incident_id: id })
        .execute();
      return note;
    });
  }

  /**
   * Closes an open incident (a conditional UPDATE: of two racing closes one wins): the closed
   * incident, "missing", or "closed" when it was closed already.
   */
  async close(
    id: string,
    resolution: string,
    by: string,
  ): Promise<ServiceIncident | "missing" | "closed"> {
    const r = await this.d.db
      .updateTable("incidents")
      .set({
        state: "closed",
        closed: new Date(this.now()).toISOString(),
        closed_by: by,
        resolution,
      })
      .where("id", "=", id)
      .where("state", "=", "open")
      .executeTakeFirst();
    const inc = await this.get(id);
    if (!inc) return "missing";
    return Number(r.numUpdatedRows) === 1 ? inc : "closed";
  }

  /** Newest first; `next` when more follow. */
  async list(q: {
    state?: "open" | "closed";
    limit: number;
    cursor?: string;
  }): Promise<{ incidents: ServiceIncident[]; next?: string }> {
    let s = this.d.db.selectFrom("incidents").selectAll();
    if (q.state) s = s.where("state", "=", q.state);
    const after = q.cursor !== undefined ? decodeCursor(q.cursor) : null;
    if (after) {
      const [opened, id] = after;
      s = s.where((eb) =>
        eb.or([eb("opened", "<", opened), eb.and([eb("opened", "=", opened), eb("id", "<", id)])]),
      );
    }
    const rows = await s
      .orderBy("opened", "desc")
      .orderBy("id", "desc")
      .limit(q.limit + 1)
      .execute();
    return pageOf("incidents", rows, q.limit, fromRow, (i) => encodeCursor(i.opened, i.id));
  }
}

function fromRow(r: IncidentsTable): ServiceIncident {
  return {
    id: r.id,
    title: r.title,
    severity: r.severity as Severity,
    state: r.state === "closed" ? "closed" : "open",
    scope: JSON.parse(r.scope) as Scope[],
    summary: r.summary,
    opened: r.opened,
    openedBy: r.opened_by,
    ...(r.closed !== null ? { closed: r.closed } : {}),
    ...(r.closed_by !== null ? { closedBy: r.closed_by } : {}),
    ...(r.resolution !== null ? { resolution: r.resolution } : {}),
  };
}
