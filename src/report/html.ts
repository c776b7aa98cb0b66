/**
 * The report as one self-contained HTML file: inline CSS, no script, no external resource (a
 * CSP meta tag forbids both), every value escaped. Prints to PDF as it shows on screen.
 */
import type { Finding } from "../doctor/findings.js";
import { protector } from "../inventory/table.js";
import type { Count, ReportData } from "./model.js";

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;margin:2rem auto;max-width:72rem;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;border-bottom:2px solid #d0d7de;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;word-break:break-all}
.ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}.muted{color:#57606a}
.summary{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #d0d7de;border-radius:6px;padding:.6rem 1rem;min-width:9rem}
.card b{display:block;font-size:1.4rem}@media print{body{margin:0;max-width:none}h2{break-after:avoid}tr{break-inside:avoid}}
`;

export function esc(v: unknown): string {
  return String(v ?? "").replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

function table(head: readonly string[], rows: readonly (readonly unknown[])[], empty: string) {
  if (rows.length === 0) return `<p class="muted">${esc(empty)}</p>`;
  const th = head.map((h) => `<th scope="col">${esc(h)}</th>`).join("");
  const tr = rows
    .map(
      (r) =>
        `<tr>${r.map((c) => (typeof c === "number" ? `<td class="n">${c}</td>` : `<td>${esc(c)}</td>`)).join("")}</tr>`,
    )
    .join("\n");
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${tr}\n</tbody></table>`;
}

function counts(title: string, c: readonly Count[]) {
  return table(
    [title, "releases", "last"],
    c.map((x) => [x.name, x.count, x.last]),
    "none",
  );
}

function card(label: string, value: unknown, bad = false) {
  return `<div class="card"><b class="${bad ? "bad" : ""}">${esc(value)}</b>${esc(label)}</div>`;
}

function findingRows(f: readonly Finding[]) {
  return f.map((x) => [x.severity, x.id, x.message, x.fix]);
}

export function renderReport(r: ReportData): string {
  const inv = r.inventory;
  const overdue = r.rotations.filter((x) => x.overdue).length;
  const s: string[] = [];
  s.push(`<!doctype html><html lang="en"><head><meta charset="utf-8">`);
  s.push(
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
  );
  s.push(`<title>TensorSeal audit report ${esc(r.window.since)} to ${esc(r.window.until)}</title>`);
  s.push(`<style>${CSS}</style></head><body>`);
  s.push(`<h1>TensorSeal audit report</h1>`);
  s.push(
    `<p class="muted">Window ${esc(r.window.since)} to ${esc(r.window.until)} · generated ${esc(r.generated)} · audit: ${esc(r.auditSource ?? "none")}</p>`,
  );
  s.push(`<section id="summary"><h2>Summary</h2><div class="summary">`);
  s.push(card("keys", inv.keys.filter((k) => k.listed).length));
  s.push(card("sealed artifacts", inv.artifacts.length));
  s.push(card("key releases", r.releases?.total ?? "n/a"));
  s.push(card("denied attempts", r.denied?.total ?? "n/a", (r.denied?.total ?? 0) > 0));
  s.push(card("rotations overdue", overdue, overdue > 0));
  s.push(
    card(
      "doctor findings",
      r.findings.length,
      r.findings.some((f) => f.severity === "error" || f.severity === "critical"),
    ),
  );
  s.push(
    card(
      "audit chain",
      r.chain ? (r.chain.ok ? "verified" : "BROKEN") : "not checked",
      r.chain ? !r.chain.ok : false,
    ),
  );
  s.push(`</div></section>`);

  s.push(`<section id="inventory"><h2>Inventory</h2>`);
  s.push(
    table(
      ["key", "where", "primary", "versions (state: files)", "rotation due"],
      inv.keys.map((k) => [
        k.name,
        k.scope ? `${k.provider} ${k.scope}` : k.provider,
        k.primaryVersion ?? "-",
        k.versions.map((v) => `v${v.version ?? "-"} ${v.state ?? "?"}: ${v.files}`).join(", "),
        k.rotationDue ? `${k.rotationDue}${k.rotationOverdue ? " (overdue)" : ""}` : "-",
      ]),
      "no keys",
    ),
  );
  s.push(
    table(
      ["artifact", "protected by", "labels", "last release"],
      inv.artifacts.map((a) => [
        a.file ?? a.registry[0]?.id ?? "?",
        a.protectors.map(protector).join(", "),
        Object.entries(a.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(" "),
        a.lastRelease
          ? `${a.lastRelease.ts} by ${a.lastRelease.principal ?? "?"}`
          : a.lastRelease === null
            ? "never"
            : "-",
      ]),
      "no sealed artifacts found",
    ),
  );
  s.push(`</section>`);

  s.push(`<section id="releases"><h2>Key releases</h2>`);
  if (!r.releases) s.push(`<p class="muted">not available (no audit source)</p>`);
  else {
    s.push(`<p>${r.releases.total} file keys released in the window.</p>`);
    s.push(`<h3>By key</h3>${counts("key@version", r.releases.byKey)}`);
    s.push(`<h3>By principal</h3>${counts("principal", r.releases.byPrincipal)}`);
    s.push(`<h3>By artifact</h3>${counts("artifact", r.releases.byArtifact)}`);
  }
  s.push(`</section>`);

  s.push(`<section id="denied"><h2>Denied attempts</h2>`);
  if (!r.denied) s.push(`<p class="muted">not available (no audit source)</p>`);
  else {
    if (r.denied.total > r.denied.shown.length)
      s.push(`<p>${r.denied.total} denied; the last ${r.denied.shown.length} are shown.</p>`);
    s.push(
      table(
        ["seq", "time", "action", "principal", "detail"],
        r.denied.shown.map((d) => [d.seq, d.ts, d.action, d.principal ?? "-", d.detail]),
        "no denied attempts",
      ),
    );
  }
  s.push(`</section>`);

  s.push(`<section id="approvals"><h2>Approvals (dual control)</h2>`);
  if (!r.approvals) s.push(`<p class="muted">not available (no audit source)</p>`);
  else
    s.push(
      table(
        [
          "request",
          "operation",
          "parameters",
          "requested by",
          "approved by",
          "state",
          "requested",
          "last change",
        ],
        r.approvals.map((a) => [
          a.id,
          a.operation,
          a.summary,
          a.requester,
          a.approvers.join(", "),
          a.state,
          a.requested,
          a.updated,
        ]),
        "no approval requests in the window",
      ),
    );
  s.push(`</section>`);

  s.push(`<section id="rotations"><h2>Rotations against schedule</h2>`);
  s.push(
    table(
      ["key", "where", "primary version", "due", "status", "rotated in window"],
      r.rotations.map((x) => [
        x.key,
        x.source,
        x.primaryVersion ?? "-",
        x.due ?? "no period",
        x.overdue ? "OVERDUE" : "on schedule",
        x.rotatedInWindow.join(", ") || "-",
      ]),
      "no keys with versions",
    ),
  );
  s.push(`</section>`);

  s.push(`<section id="drills"><h2>Drills</h2>`);
  s.push(
    r.drills
      ? table(
          ["scenario", "result", "when", "detail"],
          r.drills.map((d) => [d.scenario, d.result, d.at, d.detail]),
          "no drill run",
        )
      : `<p class="muted">no drill history found</p>`,
  );
  s.push(`</section>`);

  s.push(`<section id="findings"><h2>Doctor findings</h2>`);
  s.push(
    table(["severity", "check", "finding", "remediation"], findingRows(r.findings), "no findings"),
  );
  s.push(`</section>`);

  s.push(`<section id="chain"><h2>Audit chain</h2>`);
  if (!r.chain) s.push(`<p class="muted">not checked (no audit source)</p>`);
  else {
    const c = r.chain;
    s.push(
      `<p class="${c.ok ? "ok" : "bad"}">${c.ok ? "The hash chain and its signed checkpoints verify." : "The audit log does NOT verify."}</p>`,
    );
    s.push(
      table(
        [
          "entries",
          "signed checkpoints",
          "last entry",
          "entries after the last checkpoint",
          "public key",
          "key pinned by the auditor",
        ],
        [
          [
            c.entries,
            c.checkpoints,
            c.lastSeq,
            c.unsigned,
            c.publicKey,
            c.pinned ? "yes" : "no (reported by the source)",
          ],
        ],
        "",
      ),
    );
    if (c.problems.length)
      s.push(
        table(
          ["problem"],
          c.problems.map((p) => [p]),
          "",
        ),
      );
  }
  s.push(`</section>`);
  if (r.notes.length) {
    s.push(`<section id="notes"><h2>Notes</h2><ul>`);
    for (const n of r.notes) s.push(`<li>${esc(n)}</li>`);
    s.push(`</ul></section>`);
  }
  s.push(`</body></html>\n`);
  return s.join("\n");
}
