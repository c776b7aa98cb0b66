/** The report as Markdown (sections a reviewer reads top to bottom) or a standalone HTML page. */
import type { IncidentReport } from "./report-data.js";

type Block = { h: string; lines?: string[]; table?: { head: string[]; rows: string[][] } };

function blocks(r: IncidentReport): Block[] {
  const i = r.incident;
  const t = r.timeline;
  const chain = r.forensic.chain;
  return [
    {
      h: "Summary",
      lines: [
        `Scope: ${i.scope} (${i.class}, severity ${i.severity})`,
        `Reason: ${i.reason}`,
        `State: ${i.state}; opened by ${i.openedBy}${i.server ? `; key service ${i.server}` : "; local keystore"}`,
      ],
    },
    {
      h: "Timeline",
      table: {
        head: ["event", "time"],
        rows: [
          ["detected", t.detected],
          ["opened", t.opened],
          ["contained", t.contained ?? "-"],
          ["assessed", t.assessed ?? "-"],
          ["eradicated", t.eradicated ?? "-"],
          ["closed", t.closed ?? "-"],
          ["seconds to contain", String(t.secondsToContain ?? "-")],
          ["seconds to eradicate", String(t.secondsToEradicate ?? "-")],
        ],
      },
    },
    {
      h: "Actions",
      table: {
        head: ["step", "action", "state", "started", "finished", "actor", "approval"],
        rows: r.actions.map((a) => [
          a.step,
          a.what,
          a.state + (a.error ? `: ${a.error}` : ""),
          a.started,
          a.finished ?? "-",
          a.actor,
          a.approval
            ? `${a.approval.id} ${a.approval.state} by ${(a.approval.approvers ?? []).join(", ")}`
            : "-",
        ]),
      },
    },
    {
      h: "Files",
      lines: [
        `resealed ${r.files.resealed}, rewrapped ${r.files.rewrapped}, unreachable ${r.files.unreachable}`,
      ],
      table: {
        head: ["file", "outcome", "old header", "new header / error"],
        rows: r.files.list.map((f) => [
          f.file,
          f.outcome,
          f.oldHeaderDigest ?? "-",
          f.newHeaderDigest ?? f.error ?? "-",
        ]),
      },
    },
    {
      h: "Exposure",
      lines: [
        `exposed files: ${r.exposure.exposed.length}; at risk: ${r.exposure.atRisk.length}; releases in the window: ${r.exposure.releases}`,
        `principals: ${r.exposure.principals.join(", ") || "-"}`,
        `endpoints: ${r.exposure.endpoints.join(", ") || "-"}`,
        `artifacts: ${r.exposure.artifacts.join(", ") || "-"}`,
      ],
    },
    { h: "Residual risk", lines: r.residualRisk.length ? r.residualRisk : ["none recorded"] },
    {
      h: "Forensic appendix",
      lines: [
        chain.verified
          ? `Audit chain: ${chain.ok ? "verified" : "FAILED"} (${chain.entries} entries, head ${chain.lastSeq}:${chain.lastHash}, key ${chain.pinned ? "pinned" : "as reported by the service"})${chain.problems?.length ? `; problems: ${chain.problems.join("; ")}` : ""}`
          : `Audit chain: not verified (${chain.reason})`,
      ],
      table: {
        head: ["seq", "time", "action", "principal", "source", "key", "artifact"],
        rows: r.forensic.releases.map((x) => [
          String(x.seq),
          x.ts,
          x.action,
          x.principal,
          x.source,
          x.key ? `${x.key}${x.version !== undefined ? ` v${x.version}` : ""}` : "-",
          x.artifact ?? "-",
        ]),
      },
    },
  ];
}

const mdCell = (s: string) => s.replace(/[\\|`*_[\]<>]/g, (c) => `\\${c}`).replace(/[\r\n]+/g, " ");

export function renderMarkdown(r: IncidentReport): string {
  const out = [`# Incident ${r.incident.id}`, "", `Generated ${r.generated}.`, ""];
  for (const b of blocks(r)) {
    out.push(`## ${b.h}`, "");
    for (const l of b.lines ?? []) out.push(`- ${mdCell(l)}`);
    if (b.lines?.length) out.push("");
    if (b.table?.rows.length) {
      out.push(
        `| ${b.table.head.join(" | ")} |`,
        `| ${b.table.head.map(() => "---").join(" | ")} |`,
      );
      for (const row of b.table.rows) out.push(`| ${row.map(mdCell).join(" | ")} |`);
      out.push("");
    }
  }
  return `${out.join("\n")}\n`;
}

const esc = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );

export function renderHtml(r: IncidentReport): string {
  const parts = [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>Incident ${esc(r.incident.id)}</title>`,
    "<style>body{font-family:sans-serif;max-width:72rem;margin:2rem auto}table{border-collapse:collapse}td,th{border:1px solid #999;padding:.2rem .5rem;text-align:left;vertical-align:top}</style>",
    "</head><body>",
    `<h1>Incident ${esc(r.incident.id)}</h1><p>Generated ${esc(r.generated)}.</p>`,
  ];
  for (const b of blocks(r)) {
    parts.push(`<h2>${esc(b.h)}</h2>`);
    if (b.lines?.length)
      parts.push(`<ul>${b.lines.map((l) => `<li>${esc(l)}</li>`).join("")}</ul>`);
    if (b.table?.rows.length)
      parts.push(
        `<table><thead><tr>${b.table.head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${b.table.rows
          .map((row) => `<tr>${row.map((c) => `<td>${esc(c)}</td>`).join("")}</tr>`)
          .join("")}</tbody></table>`,
      );
  }
  parts.push("</body></html>");
  return `${parts.join("\n")}\n`;
}
