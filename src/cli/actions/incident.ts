/**
 * `tensorseal incident ...`: wires the playbook (src/incident/) to the keystore, the key service
 * named by the record (or --server when opening) and the terminal. No logic of its own.
 */
import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "../../engine/index.js";
import { fail, isTensorSealError } from "../../format/errors.js";
import type { ParsedHeader } from "../../format/header.js";
import type { Identity } from "../../format/stanza.js";
import {
  assess,
  buildReport,
  closeIncident,
  contain,
  eradicate,
  type Incident,
  type IncidentContext,
  incidentsFromAlerts,
  listIncidents,
  loadIncident,
  localControl,
  openIncident,
  renderHtml,
  renderMarkdown,
  serviceControl,
  withIncidentLock,
} from "../../incident/index.js";
import { mirrorClose, mirrorNote, mirrorOpen } from "../../incident/mirror.js";
import { checkId } from "../../incident/store.js";
import { parseIdentityFile } from "../../keys/recipients.js";
import type { ServiceClient } from "../../keys/service/client.js";
import { isoTime } from "../../service/audit/iso-time.js";
import { intFlag } from "../commands/service-shared.js";
import {
  configuredService,
  filePassphrase,
  homeDir,
  identitiesFor,
  keystoreExists,
  openKeystore,
} from "../keys-context.js";
import { printJson } from "../options.js";
import { print, printRow, printText, say } from "../output.js";
import { sameRecipients } from "../reseal-recipients.js";
import { serverUrlOption, setServerUrl } from "../session.js";

type Opts = Record<string, unknown>;

const now = () => new Date();

export async function runIncident(name: string, args: unknown[]): Promise<void> {
  if (["contain", "assess", "eradicate", "close"].includes(name)) {
    // The id is checked before it names a lock file.
    const id = checkId(String(args[0]));
    return withIncidentLock(homeDir(), id, () => step(name, args));
  }
  return step(name, args);
}

async function step(name: string, args: unknown[]): Promise<void> {
  switch (name) {
    case "open":
      return runOpen(args[0] as Opts);
    case "contain":
      return runContain(args[0] as string, args[1] as Opts);
    case "assess":
      return runAssess(args[0] as string, args[1] as string[], args[2] as Opts);
    case "eradicate":
      return runEradicate(args[0] as string, args[1] as string[], args[2] as Opts);
    case "report":
      return runReport(args[0] as string, args[1] as Opts);
    case "list":
      return runList(args[0] as Opts);
    case "from-alerts":
      return runFromAlerts(args[0] as Opts);
    case "close":
      return runClose(args[0] as string, args[1] as Opts);
  }
}

/** The key service the incident was opened against (its id checked), else null. */
async function serviceFor(inc: Incident | null): Promise<ServiceClient | null> {
  const url = inc ? inc.server?.url : (serverUrlOption() ?? process.env.TENSORSEAL_SERVER);
  if (!url) return null;
  setServerUrl(url);
  const client = await configuredService();
  if (!client) return null;
  if (inc?.server && (await client.id()) !== inc.server.id)
    fail(
      "E_PROVIDER",
      `key service ${url} is not the one incident ${inc.id} was opened against (server id changed)`,
    );
  return client;
}

async function context(inc: Incident): Promise<IncidentContext> {
  const client = await serviceFor(inc);
  const control = client
    ? serviceControl(client, inc.server!.id)
    : keystoreExists()
      ? localControl(await openKeystore())
      : null;
  return { home: homeDir(), inc, control, client, now };
}

function time(flag: string, v: unknown): string | undefined {
  if (v === undefined) return undefined;
  const t = isoTime(String(v));
  if (t === null)
    fail(
      "E_USAGE",
      `${flag} must be an ISO 8601 date or UTC time, e.g. 2026-12-01 or 2026-12-01T10:00Z`,
    );
  return t;
}

async function runOpen(o: Opts): Promise<void> {
  const client = await serviceFor(null);
  const control = client
    ? serviceControl(client, await client.id())
    : keystoreExists()
      ? localControl(await openKeystore())
      : null;
  const inc = await openIncident({
    home: homeDir(),
    scope: String(o.scope),
    reason: String(o.reason),
    ...(o.detected !== undefined ? { detected: String(o.detected) } : {}),
    control,
    client,
    now,
  });
  if (client) warnUnmirrored(await mirrorOpen(client, inc));
  if (!o.contain) {
    if (o.json) return printJson(inc);
    print(inc.id);
    say(
      `incident ${inc.id} opened: ${inc.scopeText} (${inc.class}, ${inc.severity}); next: tensorseal incident contain ${inc.id}`,
    );
    return;
  }
  // `open --contain`: the first of the responder's two commands (docs/INCIDENTS.md).
  print(inc.id);
  say(`incident ${inc.id} opened: ${inc.scopeText} (${inc.class}, ${inc.severity})`);
  await withIncidentLock(homeDir(), inc.id, async () => {
    const ctx = await context(inc);
    const r = await contain(ctx, containOptions(o));
    reportContain(ctx, r.waiting, o);
    await noteStep(ctx, containNote(ctx, r.waiting));
  });
}

function containOptions(o: Opts) {
  const since = time("--since", o.since);
  return {
    ...(since ? { since } : {}),
    fingerprints: (o.fingerprint as string[] | undefined) ?? [],
  };
}

/** The service did not take the incident's change: said, the response goes on (mirror.ts). */
function warnUnmirrored(why: string | null): void {
  if (why !== null) say(`warning: not recorded on the key service (the local record is): ${why}`);
}

/** A step's result on the service incident's timeline (incidents opened with --server). */
async function noteStep(ctx: IncidentContext, text: string): Promise<void> {
  if (ctx.client && ctx.inc.server) warnUnmirrored(await mirrorNote(ctx.client, ctx.inc, text));
}

/** Prints the contain actions; a containment waiting for an approval says how to finish it. */
function reportContain(ctx: IncidentContext, waiting: boolean, o: Opts): void {
  const id = ctx.inc.id;
  const actions = ctx.inc.actions.filter((a) => a.step === "contain");
  if (o.json) printJson(o.contain ? { incident: ctx.inc, waiting } : actions);
  else for (const a of actions) say(`${a.state}: ${a.what}`);
  if (waiting) {
    const a = actions.find((x) => x.state === "waiting");
    say(
      `containment waits for a second approval: tensorseal service approvals approve ${a?.approval?.id} (another admin), then rerun tensorseal incident contain ${id} (or go on with eradicate: it finishes the containment first)`,
    );
    return;
  }
  say(
    `incident ${id} contained at ${ctx.inc.times.contained}; next: tensorseal incident eradicate ${id} PATHS --report report.md`,
  );
}

async function runContain(id: string, o: Opts): Promise<void> {
  const ctx = await context(await loadIncident(homeDir(), id));
  const r = await contain(ctx, containOptions(o));
  reportContain(ctx, r.waiting, o);
  await noteStep(ctx, containNote(ctx, r.waiting));
}

function containNote(ctx: IncidentContext, waiting: boolean): string {
  const done = ctx.inc.actions.filter((a) => a.step === "contain" && a.state === "done");
  return `${waiting ? "containment waits for an approval" : `contained at ${ctx.inc.times.contained}`} (tensorseal incident contain by ${done.at(-1)?.actor ?? "the responder"}): ${done.map((a) => a.what).join("; ") || "no action done yet"}`;
}

async function runAssess(id: string, paths: string[], o: Opts): Promise<void> {
  const ctx = await context(await loadIncident(homeDir(), id));
  const since = time("--since", o.since);
  const a = await assess(ctx, {
    paths,
    ...(since ? { since } : {}),
    resealAll: o.resealAll === true,
  });
  if (o.json) return printJson(a);
  for (const f of a.files)
    printRow([f.class, f.file, `${f.key} v${f.version}`, f.artifact ?? "-", f.why]);
  say(
    `${a.files.filter((f) => f.class === "exposed").length} exposed, ${a.files.filter((f) => f.class === "at-risk").length} at risk; ${a.releases.length} release(s) to ${a.principals.length} principal(s) from ${a.endpoints.length} endpoint(s)`,
  );
}

async function runEradicate(id: string, paths: string[], o: Opts): Promise<void> {
  const ctx = await context(await loadIncident(homeDir(), id));
  const destroyDays = intFlag("--destroy-days", String(o.destroyDays), 1, 365);
  const concurrency = intFlag("--concurrency", String(o.concurrency), 1, 64);
  // The responder's second command: a containment still waiting for its approval is finished
  // first (nothing is eradicated before the scope is contained), then the assessment if none.
  if (ctx.inc.state === "open") {
    const c = await contain(ctx, containOptions(o));
    if (c.waiting) {
      reportContain(ctx, true, o);
      return;
    }
  }
  if (!ctx.inc.assessment) {
    const since = time("--since", o.since);
    await assess(ctx, { paths, ...(since ? { since } : {}), resealAll: o.resealAll === true });
  }
  const keystore = keystoreExists() ? await openKeystore() : null;
  const fromFiles: Identity[] = [];
  for (const p of (o.identity as string[] | undefined) ?? [])
    fromFiles.push(...parseIdentityFile(await readFile(p, "utf8")));
  let pass: Promise<string> | null = null;
  const passphrase = () => {
    pass ??= filePassphrase({ confirm: false });
    return pass;
  };
  const identities = async (h: ParsedHeader) => [
    // First: the keystore may read a version this incident disabled (this process only).
    ...(keystore ? [keystore.identity({ purpose: "eradicate" })] : []),
    ...(await identitiesFor(h, { identity: (o.identity as string[] | undefined) ?? [] })),
  ];
  const r = await eradicate(ctx, {
    paths,
    identities,
    recipients: sameRecipients({
      known: (o.knownRecipient as string[] | undefined) ?? [],
      identities: fromFiles,
      passphrase,
    }),
    keystore,
    destroyDays,
    reenable: o.reenable === true,
    concurrency,
  });
  if (o.json) printJson({ state: ctx.inc.state, waiting: r.waiting, files: ctx.inc.files });
  else {
    for (const f of ctx.inc.files)
      printRow([f.outcome, f.file, f.newHeaderDigest ?? f.error ?? ""]);
    for (const a of ctx.inc.actions.filter((x) => x.state === "waiting"))
      say(
        `waiting: ${a.what}: approval ${a.approval?.id} (tensorseal service approvals approve ${a.approval?.id}), then rerun this command`,
      );
    say(`incident ${id}: ${ctx.inc.state}`);
  }
  const counts = new Map<string, number>();
  for (const f of ctx.inc.files) counts.set(f.outcome, (counts.get(f.outcome) ?? 0) + 1);
  await noteStep(
    ctx,
    `eradicate (tensorseal incident eradicate): ${ctx.inc.state}; files ${[...counts].map(([k, n]) => `${n} ${k}`).join(", ") || "none"}${r.waiting ? "; waiting for an approval" : ""}`,
  );
  if (o.report !== undefined) {
    await writeReport(ctx.inc, String(o.report), reportFormat(String(o.report)), o.publicKey);
    say(`report written to ${String(o.report)}`);
  }
  if (r.unreachable.length > 0) {
    say(
      `${r.unreachable.length} file(s) unreachable: still on the compromised key; nothing was destroyed`,
    );
    process.exitCode = 1;
  }
}

/** The report format a file name asks for: .json, .html, else Markdown. */
function reportFormat(file: string): "md" | "json" | "html" {
  return file.endsWith(".json") ? "json" : /\.html?$/.test(file) ? "html" : "md";
}

async function renderReport(
  inc: Incident,
  format: "md" | "json" | "html",
  publicKey: unknown,
): Promise<string> {
  const client = await serviceFor(inc);
  const report = await buildReport(inc, {
    client,
    ...(publicKey !== undefined ? { publicKey: String(publicKey) } : {}),
    now,
  });
  return format === "json"
    ? `${JSON.stringify(report, null, 2)}\n`
    : format === "html"
      ? renderHtml(report)
      : renderMarkdown(report);
}

async function writeReport(
  inc: Incident,
  file: string,
  format: "md" | "json" | "html",
  publicKey: unknown,
): Promise<void> {
  await writeFileAtomic(file, await renderReport(inc, format, publicKey));
}

async function runReport(id: string, o: Opts): Promise<void> {
  const format = String(o.format);
  if (!["md", "json", "html"].includes(format))
    fail("E_USAGE", "--format must be md, json or html");
  const inc = await loadIncident(homeDir(), id);
  const text = await renderReport(inc, format as "md" | "json" | "html", o.publicKey);
  if (o.output) await writeFileAtomic(String(o.output), text);
  else if (format === "json") printJson(JSON.parse(text));
  else printText(text);
}

async function runList(o: Opts): Promise<void> {
  const list = await listIncidents(homeDir());
  if (o.json) return printJson(list);
  for (const i of list) printRow([i.id, i.state, i.severity, i.scopeText, i.times.opened]);
}

async function runClose(id: string, o: Opts): Promise<void> {
  const inc = await closeIncident(homeDir(), await loadIncident(homeDir(), id), {
    ...(o.note !== undefined ? { note: String(o.note) } : {}),
    force: o.force === true,
    now,
  });
  // Closed on disk whatever the service says: a service that cannot be reached is a warning.
  const client = inc.server
    ? await serviceFor(inc).catch((e: unknown) => {
        warnUnmirrored(isTensorSealError(e) ? e.message : "the key service could not be reached");
        return null;
      })
    : null;
  if (client) warnUnmirrored(await mirrorClose(client, inc));
  if (o.json) return printJson(inc);
  say(`incident ${id} closed at ${inc.times.closed}`);
}

async function runFromAlerts(o: Opts): Promise<void> {
  const client = await serviceFor(null);
  if (!client) return fail("E_USAGE", "incident from-alerts needs the key service: --server URL");
  const since = time("--since", o.since);
  const opened = await incidentsFromAlerts({
    home: homeDir(),
    client,
    ...(since ? { since } : {}),
    kinds: o.firstSeen ? ["alert.rate", "alert.first-seen"] : ["alert.rate"],
    now,
  });
  for (const inc of opened) warnUnmirrored(await mirrorOpen(client, inc));
  if (o.contain)
    for (const inc of opened)
      await withIncidentLock(homeDir(), inc.id, async () => {
        const ctx = await context(inc);
        const r = await contain(ctx);
        await noteStep(ctx, containNote(ctx, r.waiting));
      });
  if (o.json) return printJson(opened);
  for (const i of opened) printRow([i.id, i.state, i.scopeText, i.reason]);
  say(`${opened.length} incident(s) opened from alerts`);
}
