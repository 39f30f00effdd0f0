import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import axe from 'axe-core';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { DEV_MAIL_CLIENT } from '../../src/portal/index.js';
import { pkiFile } from './gateway.js';

/** Debian's Chromium (scripts/system-deps.mjs installs it for the tests): never a browser download. */
export const CHROMIUM = '/usr/bin/chromium';

export interface PortalBrowser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/** A fresh Chromium profile, headless, as the portal's users would have (French, phone-sized or not). */
export async function openBrowser(options: { mobile?: boolean } = {}): Promise<PortalBrowser> {
  const profile = mkdtempSync(path.join(tmpdir(), 'mssgw-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      // The date field's order follows the browser's language, not the page's (French with Debian's
      // chromium-l10n; without it Chromium has only en-US and shows mm/dd/yyyy).
      '--lang=fr-FR',
    ],
    // The development PKI's root is not in Chromium's store; node-side requests do verify it.
    ignoreHTTPSErrors: true,
    locale: 'fr-FR',
    viewport: options.mobile ? { width: 390, height: 844 } : { width: 1100, height: 900 },
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Runs axe-core in the page (through the DevTools protocol, which the page's CSP does not govern:
 * the portal itself runs no script) and returns the serious and critical violations.
 */
export async function seriousViolations(page: Page): Promise<string[]> {
  await page.evaluate(axe.source);
  // A string, evaluated in the page: this project's TypeScript has no DOM types.
  const result = await page.evaluate<axe.AxeResults>(
    "window.axe.run(document, { resultTypes: ['violations'] })",
  );
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
}

/**
 * A screenshot of a page. The README's copies under docs/portal/ are tracked files, so a test run
 * must not rewrite them (a fresh clone would be left dirty, and each run's pixels differ): they are
 * refreshed on purpose with `npm run screenshots`, which sets PORTAL_SCREENSHOTS_DIR. Otherwise the
 * picture goes to a scratch folder, still taken so that a page that cannot render fails the test.
 */
export async function screenshot(page: Page, name: string): Promise<void> {
  const dir = process.env.PORTAL_SCREENSHOTS_DIR ?? path.join(tmpdir(), 'mssgw-portal-screenshots');
  await mkdir(dir, { recursive: true });
  await page.screenshot({ path: path.resolve(dir, `${name}.png`), fullPage: true });
}

export interface PortalResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One HTTPS request to the portal from Node, verifying its certificate against the development root. */
export function portalRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<PortalResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? 'GET',
        headers: options.headers ?? {},
        ca: pkiFile('ca/root.crt'),
        servername: 'localhost',
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Logs a development person in through the local OpenID provider's own login form. */
export async function loginAs(page: Page, portalUrl: string, nationalId: string): Promise<void> {
  await page.goto(`${portalUrl}/`);
  await page.getByRole('link', { name: 'Se connecter avec Pro Santé Connect' }).click();
  await page.locator('input[name="login"]').fill(nationalId);
  await page.locator('input[name="password"]').fill('development');
  await page.locator('button[type="submit"]').click();
  await page.waitForURL(`${portalUrl}/`);
  await expect.poll(() => page.locator('h1').textContent()).toBe('Mes adresses MSSanté');
}

/**
 * An access token for mail software, got as Thunderbird gets one from Pro Santé Connect: the
 * authorization code flow with PKCE of the development provider's public mail client, the person
 * logging in through the provider's own form in her own browser, then the code exchanged at the
 * token endpoint. The loopback redirect is caught in the browser, as a native client's listener would.
 */
export async function mailClientToken(issuer: string, nationalId: string): Promise<string> {
  const { clientId, redirectUri } = DEV_MAIL_CLIENT;
  const browser = await openBrowser();
  try {
    const page = await browser.context.newPage();
    page.setDefaultTimeout(20_000);
    const verifier = randomBytes(32).toString('base64url');
    const state = randomBytes(16).toString('base64url');
    let callback: URL | undefined;
    await page.route(`${redirectUri}**`, async (route) => {
      callback = new URL(route.request().url());
      await route.fulfill({ status: 200, contentType: 'text/plain', body: 'ok' });
    });
    const auth = new URL(`${issuer}/auth`);
    auth.search = new URLSearchParams({
      client_id: clientId,
      response_type: 'code',
      scope: 'openid scope_all',
      redirect_uri: redirectUri,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      state,
    }).toString();
    await page.goto(auth.href);
    await page.locator('input[name="login"]').fill(nationalId);
    await page.locator('input[name="password"]').fill('development');
    await page.locator('button[type="submit"]').click();
    await page.waitForURL(`${redirectUri}**`);
    expect(callback?.searchParams.get('state')).toBe(state);
    const code = callback?.searchParams.get('code');
    expect(code).toBeTruthy();
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: code ?? '',
        redirect_uri: redirectUri,
        client_id: clientId,
        code_verifier: verifier,
      }).toString(),
    });
    const body = (await res.json()) as { access_token?: string; token_type?: string };
    expect(res.status).toBe(200);
    expect(body.token_type).toBe('Bearer');
    return body.access_token ?? '';
  } finally {
    await browser.close();
  }
}

/**
 * The phone check of one page: no horizontal scrolling, and every visible control (link, button,
 * field) lies within the viewport's width, so that it can be reached by scrolling down only.
 */
export async function phoneLayoutProblems(page: Page): Promise<string[]> {
  // A string, evaluated in the page: this project's TypeScript has no DOM types.
  return page.evaluate<string[]>(`(() => {
    const problems = [];
    const root = document.documentElement;
    if (root.scrollWidth > root.clientWidth) problems.push('page ' + root.scrollWidth + 'px wide for ' + root.clientWidth);
    for (const el of document.querySelectorAll('a, button, input:not([type=hidden]), select, textarea')) {
      if (el.classList.contains('skip')) continue; // shown on focus only
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      if (r.left < 0 || r.right > root.clientWidth + 0.5) {
        problems.push((el.textContent || el.getAttribute('name') || el.tagName).trim() + ' at ' + Math.round(r.left) + '..' + Math.round(r.right));
      }
    }
    return problems;
  })()`);
}
