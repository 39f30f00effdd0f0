import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ImapFlow } from 'imapflow';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/app/index.js';
import { frenchDate } from '../../src/lifecycle/index.js';
import { deliverLmtp } from '../../src/store/index.js';
import { scratchDir, startTestGateway, uniqueBal } from '../helpers/gateway.js';
import { freePort } from '../helpers/free-port.js';
import { EXTRACTION_HEADER, extractionLine } from '../helpers/national-data.js';
import { directClient, gatewayClient } from '../helpers/imap-clients.js';
import { journalEvents } from '../helpers/journal.js';
import {
  loginAs,
  mailClientToken,
  openBrowser,
  phoneLayoutProblems,
  portalRequest,
  screenshot,
  seriousViolations,
  type PortalBrowser,
} from '../helpers/portal.js';
import { sharedStore } from '../helpers/store-mailbox.js';
import { tokenSubmission } from '../helpers/smtp-clients.js';

/**
 * The professionals' portal in a real browser (issue #13): Debian's Chromium driven by
 * playwright-core, logging in through the local OpenID provider (oidc-provider) exactly as through
 * Pro Santé Connect. A doctor gives his secretary read+send until a date; she reads his INBOX and
 * sends for him with her own token; he sees it under "qui a utilisé ma boîte" and revokes.
 */
const DOCTOR = '810000000001';
const SECRETARY = '810000000002';
const system = { kind: 'system' as const, id: 'test' };

let gw: Gateway;
let browser: PortalBrowser;
let page: Page;
let portal: string;
let doctorBal: string;
const consoleErrors: string[] = [];

/** The secretary's access token, from the local OpenID provider (her own login, the mail client). */
let secretaryToken: string;

/** The day after 30 days from now, as the date field takes it (YYYY-MM-DD). */
const until = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);

/** The doctor's address at another operator, as the national extraction lists it. */
const DOCTOR_ELSEWHERE = 'jean.martin@ch-exemple.mssante.fr';

beforeAll(async () => {
  const extraction = path.join(scratchDir('extraction'), 'Extraction_Correspondance_MSSante.txt');
  // extractionLine(_, 1) is national id 8 + 10000000001 = the doctor's.
  writeFileSync(extraction, `${EXTRACTION_HEADER}\n${extractionLine(DOCTOR_ELSEWHERE, 1)}\n`);
  // The provider's port is known beforehand so that the token verifier can trust it as it trusts
  // Pro Santé Connect: one more auth.issuers entry (its JWKS URL), no development shortcut.
  const providerPort = await freePort();
  const provider = `http://127.0.0.1:${providerPort}`;
  gw = await startTestGateway({
    overrides: {
      portal: { enabled: true, port: 0, devProvider: { enabled: true, port: providerPort } },
      auth: {
        issuers: [
          { name: 'development-oidc', issuer: provider, jwksUrl: `${provider}/jwks`, development: true },
        ],
      },
      directory: { extraction: { source: extraction } },
    },
  });
  expect(gw.portal!.devIssuer()).toBe(provider);
  await gw.mirrors.refresh('extraction');
  portal = gw.portal!.publicUrl()!;
  doctorBal = uniqueBal('dr.martin');
  await gw.registry.create({ address: doctorBal, type: 'PER', owner: DOCTOR }, system);
  browser = await openBrowser();
  page = await browser.context.newPage();
  page.setDefaultTimeout(20_000);
  // What the browser refuses on the portal's own pages under their CSP (the provider's are not ours;
  // refusal pages with a 4xx status are expected).
  page.on('console', (m) => {
    const text = m.text();
    if (m.location().url.startsWith(portal) && /Content Security Policy|Refused to/i.test(text)) {
      consoleErrors.push(text);
    }
  });
});
afterAll(async () => {
  await browser?.close();
  await gw?.stop();
});

async function deliverOne(to: string): Promise<string> {
  const subject = `CR ${randomUUID()}`;
  const raw = Buffer.from(
    `From: <labo@peer.mssante.test>\r\nTo: <${to}>\r\nSubject: ${subject}\r\n\r\nCompte rendu.\r\n`,
  );
  const [result] = await deliverLmtp(sharedStore().lmtp, { from: 'labo@peer.mssante.test', to: [to] }, raw);
  expect(result?.outcome).toBe('delivered');
  return subject;
}

async function inboxSubjects(client: ImapFlow): Promise<string[]> {
  const lock = await client.getMailboxLock('INBOX');
  try {
    const subjects: string[] = [];
    for await (const m of client.fetch('1:*', { envelope: true })) subjects.push(m.envelope?.subject ?? '');
    return subjects;
  } finally {
    lock.release();
  }
}

describe("the professionals' portal in Chromium", () => {
  it('shows the welcome page to a visitor, with a strict CSP and no serious accessibility violation', async () => {
    const res = await portalRequest(`${portal}/`);
    expect(res.status).toBe(200);
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers['strict-transport-security']).toBeDefined();
    await page.goto(`${portal}/`);
    expect(await page.locator('html').getAttribute('lang')).toBe('fr');
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, 'accueil');
  });

  it('logs the doctor in through the OpenID provider (code + PKCE) with a secure session cookie', async () => {
    await loginAs(page, portal, DOCTOR);
    const cookies = await browser.context.cookies(portal);
    const session = cookies.find((c) => c.name === '__Host-mssgw-session');
    expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Lax', path: '/' });
    await expect.poll(() => page.getByText(doctorBal).count()).toBeGreaterThan(0);
    expect(await page.getByText('Dernière utilisation').count()).toBe(1);
    // Elsewhere, read-only: what the national extraction lists for his national id.
    expect(await page.getByText(DOCTOR_ELSEWHERE).count()).toBe(1);
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, 'adresses');
    const login = journalEvents(gw.config.dataDir).find((e) => e.event === 'portal.login');
    expect(login).toMatchObject({ nationalId: DOCTOR });
  });

  it('refuses a past or malformed end date with a French message, and grants nothing', async () => {
    await page.getByRole('link', { name: `Gérer les accès à ${doctorBal}` }).click();
    const field = page.getByLabel("Jusqu'au (inclus, facultatif)");
    // The browser's own date picker, in French, from today on (Paris time).
    expect(await field.getAttribute('type')).toBe('date');
    expect(await field.getAttribute('lang')).toBe('fr');
    const today = new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Paris' }).format(new Date());
    expect(await field.getAttribute('min')).toBe(today);
    // The server checks too: a browser without a picker, or a forged form, sends anything.
    const tryDate = async (value: string) => {
      await page.evaluate("document.querySelector('form.grant').noValidate = true");
      await page.evaluate(`document.getElementById('jusqua').type = 'text'`);
      await page.getByLabel('Identifiant national de la personne').fill(SECRETARY);
      await page.getByLabel("Jusqu'au (inclus, facultatif)").fill(value);
      await page.getByRole('button', { name: "Donner l'accès" }).click();
    };
    const alert = () => page.getByRole('alert').textContent();
    await tryDate('01/02/2020');
    await expect
      .poll(alert)
      .toBe('La date de fin 01/02/2020 est déjà passée : choisissez aujourd’hui ou un jour à venir.');
    await tryDate('31/02/2031');
    await expect
      .poll(alert)
      .toMatch(
        /^La date de fin « 31\/02\/2031 » n’est pas une date valable : écrivez-la au format jj\/mm\/aaaa/,
      );
    await tryDate('demain');
    await expect.poll(alert).toMatch(/^La date de fin « demain » n’est pas une date valable/);
    // What was typed stays in the form but for the date; nothing was granted.
    expect(await page.getByLabel('Identifiant national de la personne').inputValue()).toBe(SECRETARY);
    expect(await gw.registry.grants(doctorBal)).toEqual([]);
    expect(await seriousViolations(page)).toEqual([]);
  });

  it('grants the secretary read+send until a date, through the registry operation, journaled with the doctor', async () => {
    await page.goto(`${portal}/boite?adresse=${encodeURIComponent(doctorBal)}`);
    expect(await seriousViolations(page)).toEqual([]);
    await page.getByLabel('Identifiant national de la personne').fill(SECRETARY);
    await page.getByLabel('Droit').selectOption('delegate');
    await page.getByLabel('Lecture et envoi de la part du titulaire').check();
    await page.getByLabel("Jusqu'au (inclus, facultatif)").fill(until);
    await page.getByRole('button', { name: "Donner l'accès" }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toBe("L'accès a été donné.");
    const [grant] = await gw.registry.grants(doctorBal);
    expect(grant).toMatchObject({
      right: 'delegate',
      subject: { kind: 'person', nationalId: SECRETARY },
      scopes: ['read', 'send'],
      grantedBy: `portal:${DOCTOR}`,
    });
    // Through the chosen day, in Paris time.
    expect(Date.parse(grant!.expiresAt!)).toBeGreaterThan(Date.parse(`${until}T12:00:00Z`));
    expect(Date.parse(grant!.expiresAt!)).toBeLessThan(Date.parse(`${until}T23:59:59Z`));
    const row = page.getByRole('row', { name: new RegExp(SECRETARY) });
    expect(await row.count()).toBe(1);
    // Shown back the French way.
    expect(await row.textContent()).toContain(frenchDate(Date.parse(`${until}T12:00:00Z`), 'Europe/Paris'));
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, 'acces');
    const granted = journalEvents(gw.config.dataDir).find((e) => e.event === 'registry.right.granted');
    expect(granted).toMatchObject({ address: doctorBal, actor: { kind: 'portal', id: DOCTOR } });
  });

  it('gives the secretary, logging in herself at the OpenID provider, an access token the gateway accepts', async () => {
    secretaryToken = await mailClientToken(gw.portal!.devIssuer()!, SECRETARY);
    // A JWT like Pro Santé Connect's: the provider's issuer, her national id in SubjectNameID.
    const [, payload] = secretaryToken.split('.');
    const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
    expect(claims).toMatchObject({ iss: gw.portal!.devIssuer(), SubjectNameID: SECRETARY });
  });

  it("lets the secretary, with her own token, read the doctor's INBOX over IMAP and send on his behalf", async () => {
    const subject = await deliverOne(doctorBal);
    const imap = await gatewayClient(gw.addresses.imapTls!.port, doctorBal, secretaryToken, 'implicit');
    try {
      expect(await inboxSubjects(imap)).toContain(subject);
    } finally {
      await imap.logout();
    }
    // She has no MSSanté address at all: no Sender:, her national id in X-MSSGW-Delegate.
    const transport = tokenSubmission(gw.addresses.submission!.port, doctorBal, secretaryToken);
    const sent = await transport.sendMail({
      envelope: { from: doctorBal, to: [doctorBal] },
      from: doctorBal,
      to: doctorBal,
      subject: 'Rendez-vous confirmé',
      text: 'Envoyé par le secrétariat.',
    });
    expect(sent.response).toMatch(/^250 /);
    // A client may not write the gateway's header itself.
    await expect(
      transport.sendMail({
        envelope: { from: doctorBal, to: [doctorBal] },
        from: doctorBal,
        to: doctorBal,
        subject: 'Faux',
        text: 'x',
        headers: { 'X-MSSGW-Delegate': '810000000003' },
      }),
    ).rejects.toMatchObject({ responseCode: 554 });
    transport.close();
    // As stored in the doctor's mailbox: her national id, and no Sender: naming an address not hers.
    const store = await directClient(doctorBal);
    try {
      await expect
        .poll(
          async () => {
            const lock = await store.getMailboxLock('INBOX');
            try {
              for await (const m of store.fetch('1:*', { source: true, envelope: true })) {
                if (m.envelope?.subject === 'Rendez-vous confirmé') return m.source?.toString('utf8') ?? '';
              }
              return '';
            } finally {
              lock.release();
            }
          },
          { timeout: 30_000, interval: 200 },
        )
        .toMatch(/^X-MSSGW-Delegate: 810000000002\r?$/m);
    } finally {
      await store.logout();
    }
    const accepted = journalEvents(gw.config.dataDir).find(
      (e) => e.event === 'smtp.submission.accepted' && e.bal === doctorBal,
    );
    expect(accepted).toMatchObject({ right: 'delegate', principal: { nationalId: SECRETARY } });
    const login = journalEvents(gw.config.dataDir).find(
      (e) => e.event === 'auth.succeeded' && e.bal === doctorBal,
    );
    expect(login).toMatchObject({ principal: { nationalId: SECRETARY, via: 'development-oidc' } });
  });

  it('shows the doctor who used his mailbox: her login and her sending', async () => {
    await page.getByRole('link', { name: 'Qui a utilisé ma boîte' }).click();
    await expect.poll(() => page.locator('h1').textContent()).toBe('Qui a utilisé ma boîte');
    const rows = page.getByRole('row', { name: new RegExp(SECRETARY) });
    const texts = await rows.allTextContents();
    expect(texts.some((t) => t.includes('connexion') && t.includes('IMAP'))).toBe(true);
    expect(texts.some((t) => t.includes('envoi') && t.includes('SMTP'))).toBe(true);
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, 'utilisation');
  });

  it('shows the mail software settings and serves the Thunderbird autoconfiguration', async () => {
    await page.getByRole('link', { name: 'Configurer ma messagerie' }).click();
    await expect.poll(() => page.locator('h1').textContent()).toBe('Configurer ma messagerie');
    expect(await page.getByText(String(gw.addresses.imapTls!.port)).count()).toBeGreaterThan(0);
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, 'messagerie');
    const xml = await portalRequest(
      `${portal}/mail/config-v1.1.xml?emailaddress=${encodeURIComponent(doctorBal)}`,
    );
    expect(xml.status).toBe(200);
    expect(xml.body).toContain(`<port>${gw.addresses.imapTls!.port}</port>`);
    expect(xml.body).toContain(`<port>${gw.addresses.submission!.port}</port>`);
    expect(xml.body).toContain('<authentication>OAuth2</authentication>');
    expect(xml.body).toContain(`<authURL>${gw.portal!.devIssuer()!}/auth</authURL>`);
    const other = await portalRequest(`${portal}/mail/config-v1.1.xml?emailaddress=x@example.org`);
    expect(other.status).toBe(404);
  });

  it('changes nothing for a request without a session or without the CSRF token', async () => {
    const form = (extra: Record<string, string>) =>
      new URLSearchParams({
        adresse: doctorBal,
        personne: '810000000003',
        droit: 'delegate',
        portee: 'read',
        ...extra,
      }).toString();
    const headers = { 'content-type': 'application/x-www-form-urlencoded' };
    const anonymous = await portalRequest(`${portal}/boite/droits`, {
      method: 'POST',
      headers,
      body: form({}),
    });
    expect(anonymous.status).toBe(401);
    const cookies = await browser.context.cookies(portal);
    const cookie = cookies.map((c) => `${c.name}=${c.value}`).join('; ');
    const noToken = await portalRequest(`${portal}/boite/droits`, {
      method: 'POST',
      headers: { ...headers, cookie },
      body: form({}),
    });
    expect(noToken.status).toBe(403);
    const badToken = await portalRequest(`${portal}/boite/droits`, {
      method: 'POST',
      headers: { ...headers, cookie },
      body: form({ _csrf: 'forged' }),
    });
    expect(badToken.status).toBe(403);
    const revokeNoToken = await portalRequest(`${portal}/boite/droits/retirer`, {
      method: 'POST',
      headers: { ...headers, cookie },
      body: new URLSearchParams({ adresse: doctorBal, personne: SECRETARY }).toString(),
    });
    expect(revokeNoToken.status).toBe(403);
    const grants = await gw.registry.grants(doctorBal);
    expect(grants.map((g) => g.subject)).toEqual([{ kind: 'person', nationalId: SECRETARY }]);
  });

  it('fits a phone (375×740): no horizontal scrolling, every control within reach, on each page', async () => {
    await page.setViewportSize({ width: 375, height: 740 });
    const pages: ReadonlyArray<readonly [string, string]> = [
      ['/', 'telephone-adresses'],
      [`/boite?adresse=${encodeURIComponent(doctorBal)}`, 'telephone-acces'],
      ['/utilisation', 'telephone-utilisation'],
      ['/messagerie', 'telephone-messagerie'],
    ];
    for (const [url, name] of pages) {
      await page.goto(`${portal}${url}`);
      expect({ url, problems: await phoneLayoutProblems(page) }).toEqual({ url, problems: [] });
      expect(await seriousViolations(page)).toEqual([]);
      await screenshot(page, name);
    }
    // The controls work at that size: the revoke button of the table laid out as cards is reachable.
    await page.goto(`${portal}/boite?adresse=${encodeURIComponent(doctorBal)}`);
    const revoke = page.getByRole('button', { name: `Retirer l'accès de ${SECRETARY}` });
    await revoke.scrollIntoViewIfNeeded();
    const box = await revoke.boundingBox();
    expect(box!.x + box!.width).toBeLessThanOrEqual(375);
  });

  it('refuses a grant the registry refuses, with its precise reason, and lets the doctor revoke the secretary', async () => {
    await page.goto(`${portal}/boite?adresse=${encodeURIComponent(doctorBal)}`);
    // The owner himself: the registry's rule (an owner needs no delegation), said in the page.
    await page.getByLabel('Identifiant national de la personne').fill(DOCTOR);
    await page.getByRole('button', { name: "Donner l'accès" }).click();
    await expect
      .poll(() => page.getByRole('alert').textContent())
      .toBe(
        `Ce droit ne s’applique pas à cette boîte : ${DOCTOR} owns ${doctorBal}; an owner needs no delegation`,
      );
    expect(await gw.registry.grants(doctorBal)).toHaveLength(1);
    await page.getByRole('button', { name: `Retirer l'accès de ${SECRETARY}` }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toBe("L'accès a été retiré.");
    expect(await gw.registry.grants(doctorBal)).toEqual([]);
    const revoked = journalEvents(gw.config.dataDir).find((e) => e.event === 'registry.right.revoked');
    expect(revoked).toMatchObject({ address: doctorBal, actor: { kind: 'portal', id: DOCTOR } });
    await expect(
      gatewayClient(gw.addresses.imapTls!.port, doctorBal, secretaryToken, 'implicit'),
    ).rejects.toMatchObject({ authenticationFailed: true });
  });

  it('logs out from a phone and shows the welcome page within its width', async () => {
    await page.getByRole('button', { name: 'Se déconnecter' }).click();
    await expect.poll(() => page.locator('h1').textContent()).toBe('Bienvenue');
    expect(await phoneLayoutProblems(page)).toEqual([]);
    await screenshot(page, 'telephone-accueil');
  });

  it('broke no rule of its Content-Security-Policy on any page', () => {
    expect(consoleErrors).toEqual([]);
  });
});
