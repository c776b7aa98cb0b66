/** The incident layer: the compromise playbook (docs/INCIDENTS.md). */
export { assess } from "./assess.js";
export { contain } from "./contain.js";
export type { IncidentContext } from "./context.js";
export { type KeyControl, localControl, serviceControl } from "./controls.js";
export { eradicate } from "./eradicate.js";
export { incidentsFromAlerts } from "./from-alerts.js";
export { withIncidentLock } from "./lock.js";
export { closeIncident, openIncident } from "./open.js";
export { buildReport, type IncidentReport } from "./report-data.js";
export { renderHtml, renderMarkdown } from "./report-render.js";
export { incidentsDir, listIncidents, loadIncident } from "./store.js";
export type * from "./types.js";
