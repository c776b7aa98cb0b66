/**
 * Headless Chromium for the console's browser tests (playwright-core driving Debian's
 * `chromium`, TENSORSEAL_CHROMIUM to override), axe-core for accessibility, and screenshots
 * into TENSORSEAL_CONSOLE_SCREENSHOTS when set (docs/console/ is made that way). Missing
 * Chromium skips, except under TENSORSEAL_REQUIRE_ALL=1, where it fails.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { test } from "node:test";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";

export const CHROMIUM = process.env.TENSORSEAL_CHROMIUM ?? "/usr/bin/chromium";

/**
 * The `skip` of a browser suite: false where Chromium is here, else why not. Under
 * TENSORSEAL_REQUIRE_ALL=1 (CI) a missing Chromium also registers a failing test, so a suite
 * that would be skipped fails loudly instead.
 */
export function chromiumSkip(suite: string): string | false {
  const missing = chromiumMissing();
  if (missing && process.env.TENSORSEAL_REQUIRE_ALL === "1")
    test(`Chromium is available for ${suite} (TENSORSEAL_REQUIRE_ALL=1)`, () =>
      assert.fail(missing));
  return missing ?? false;
}

/** Why the browser tests cannot run here, or null. */
export function chromiumMissing(): string | null {
  return existsSync(CHROMIUM)
    ? null
    : `Chromium not found at ${CHROMIUM} (apt-get install chromium, or set TENSORSEAL_CHROMIUM)`;
}

export async function launch(): Promise<Browser> {
  const root = process.getuid?.() === 0;
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root cannot use Chromium's sandbox; the pages are our own, served on loopback.
    args: root ? ["--no-sandbox"] : [],
  });
}

const axeSource = readFileSync(
  createRequire(import.meta.url).resolve("axe-core/axe.min.js"),
  "utf8",
);

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/**
 * Runs axe-core on the page (evaluated over the DevTools protocol, which the page's CSP does
 * not govern) and fails on any serious or critical violation.
 */
export async function assertAccessible(page: Page, what: string): Promise<void> {
  await page.evaluate(axeSource);
  const violations = (await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(): Promise<{ violations: unknown[] }> } })
      .axe;
    return (await axe.run()).violations;
  })) as AxeViolation[];
  const bad = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(
    bad.map(
      (v) =>
        `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`,
    ),
    [],
    `accessibility of ${what}`,
  );
}

/** Saves a full-page PNG as NAME.png when TENSORSEAL_CONSOLE_SCREENSHOTS names a folder. */
export async function screenshot(page: Page, name: string): Promise<void> {
  const dir = process.env.TENSORSEAL_CONSOLE_SCREENSHOTS;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
}

/**
 * A page of a fresh browser context signed in to the console at `base` with an API token (the
 * sign-in form, as a person uses it); the context goes on `contexts` for the caller to close.
 */
export async function signedIn(
  browser: Browser,
  contexts: BrowserContext[],
  base: string,
  token: string,
  viewport = { width: 1280, height: 800 },
): Promise<Page> {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport });
  contexts.push(ctx);
  ctx.setDefaultTimeout(20_000);
  const page = await ctx.newPage();
  await page.goto(`${base}/console/`);
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByTestId("principal").waitFor();
  return page;
}
