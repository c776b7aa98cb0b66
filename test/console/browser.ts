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
import { after, before, test } from "node:test";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import type { ServerOptions } from "../../src/service/index.js";
import { type Sandbox, sandbox } from "../cli/helpers.js";
import { bearer, type CliService, cliService } from "../service/helpers.js";

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

type Viewport = { width: number; height: number };

/** A page of a fresh browser context (20 s timeouts); the context goes on `contexts` to close. */
export async function freshPage(
  browser: Browser,
  contexts: BrowserContext[],
  viewport?: Viewport,
): Promise<Page> {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, ...(viewport && { viewport }) });
  contexts.push(ctx);
  ctx.setDefaultTimeout(20_000);
  return ctx.newPage();
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
  viewport: Viewport = { width: 1280, height: 800 },
): Promise<Page> {
  const page = await freshPage(browser, contexts, viewport);
  await page.goto(`${base}/console/`);
  await page.getByLabel("API token", { exact: true }).fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByTestId("principal").waitFor();
  return page;
}

/** What `consoleSuite` starts; read it in hooks and tests (it is set in `before`). */
export interface ConsoleSuite {
  readonly sb: Sandbox;
  readonly svc: CliService;
  /** The service's URL: the console is at `${base}/console/`. */
  readonly base: string;
  readonly browser: Browser;
  /** A page of a fresh context, not signed in; closed after the suite. */
  page(viewport?: Viewport): Promise<Page>;
  /** A page signed in with `token` (see signedIn); closed after the suite. */
  signedIn(token: string, viewport?: Viewport): Promise<Page>;
  /** An API request with `token` as bearer (in-process); asserts a 2xx and gives its JSON. */
  // biome-ignore lint/suspicious/noExplicitAny: the tests read whatever the route returns
  api(method: "GET" | "POST", url: string, token: string, payload?: object): Promise<any>;
}

/**
 * The set-up every console browser suite shares, as `before`/`after` hooks of the calling
 * `describe`: a sandbox, a key service with the console over HTTPS on loopback (`opts` added),
 * and Chromium; after the suite, every context, the browser, the service and the sandbox are
 * closed. The suite's own `before` hooks run after this one, so they can seed the service.
 */
export function consoleSuite(opts: Partial<ServerOptions> = {}): ConsoleSuite {
  let sb: Sandbox | undefined;
  let svc: CliService | undefined;
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  before(async () => {
    sb = sandbox();
    svc = await cliService(sb, { console: {}, ...opts });
    browser = await launch();
  });
  after(async () => {
    for (const c of contexts) await c.close();
    await browser?.close();
    await svc?.close();
    sb?.cleanup();
  });
  const set = <T>(v: T | undefined, what: string): T => {
    assert.ok(v, `${what} is set in before()`);
    return v;
  };
  return {
    get sb() {
      return set(sb, "the sandbox");
    },
    get svc() {
      return set(svc, "the service");
    },
    get base() {
      return set(svc, "the service").env.TENSORSEAL_SERVER!;
    },
    get browser() {
      return set(browser, "the browser");
    },
    page(viewport) {
      return freshPage(this.browser, contexts, viewport);
    },
    signedIn(token, viewport) {
      return signedIn(this.browser, contexts, this.base, token, viewport);
    },
    async api(method, url, token, payload) {
      const r = await this.svc.app.inject({
        method,
        url,
        headers: bearer(token),
        ...(payload ? { payload } : {}),
      });
      assert.ok(r.statusCode < 300, `${url}: ${r.statusCode} ${r.body}`);
      return r.json();
    },
  };
}
