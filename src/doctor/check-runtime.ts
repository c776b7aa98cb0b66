/**
 * runtime.end-of-life: all of tensorseal's cryptography is the OpenSSL inside the Node.js that
 * runs it (node:crypto and the native addon both call it), so a Node.js line past its end of
 * life gets no more OpenSSL fixes either. The dates are the Node.js Release Working Group's
 * schedule (github.com/nodejs/Release, schedule.json) as of this release; a line not listed
 * here (a later one) is not judged.
 */
import type { Finding } from "./findings.js";

const END_OF_LIFE: Readonly<Record<number, string>> = {
  20: "2026-04-30",
  21: "2024-06-01",
  22: "2027-04-30",
  23: "2025-06-01",
  24: "2028-04-30",
  25: "2026-06-01",
  26: "2029-04-30",
  27: "2030-04-30",
};

/** `node` and `openssl` as in process.versions (e.g. "20.20.2", "3.0.19"). */
export function checkRuntime(node: string, openssl: string, now: Date): Finding[] {
  const major = Number(/^v?(\d+)\./.exec(node)?.[1]);
  const end = END_OF_LIFE[major];
  if (end === undefined || now.getTime() < Date.parse(`${end}T00:00:00Z`)) return [];
  return [
    {
      id: "runtime.end-of-life",
      severity: "warning",
      message: `tensorseal runs on Node.js ${node}, whose line reached its end of life on ${end}: no more security fixes, for the OpenSSL inside it either`,
      evidence: `Node.js ${node} with OpenSSL ${openssl}; Node.js ${major} end of life ${end}`,
      fix: "run tensorseal on a Node.js line that is still supported (24, LTS until 2028-04-30, or later) and reinstall it there (npm ci builds the addons for it): docs/NODE.md",
    },
  ];
}
