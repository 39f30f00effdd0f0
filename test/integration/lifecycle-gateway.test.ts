import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Gateway } from '../../src/app/index.js';
import { mintDevToken } from '../../src/auth/index.js';
import { IndicatorReport } from '../../src/lifecycle/index.js';
import { ActivityStore } from '../../src/registry/index.js';
import { createLogger } from '../../src/observability/index.js';
import { type FhirTestServer, startFhirServer } from '../helpers/fhir-server.js';
import { PEER_DOMAIN, testConfig, uniqueBal } from '../helpers/gateway.js';
import { journalEvents } from '../helpers/journal.js';
import { eventually, inboxMessages } from '../helpers/mailbox.js';
import { peerMx, tokenSubmission } from '../helpers/smtp-clients.js';
import { gatewayClient } from '../helpers/imap-clients.js';

/**
 * Issue #6 through the whole gateway: its own clock, the daily job run by the scheduler, the
 * publication service talking to a local FHIR server, the warning delivered into the mailbox, and
 * the republication on the owner's first login (IMAP, XOAUTH2) after unpublication.
 */

const DAY = 86_400_000;
const personId = () => `8${String(Math.floor(Math.random() * 1e11)).padStart(11, '0')}`;
const OWNER = personId();
// Issue #13 item 5: a doctor with two mailboxes here, a practice (ORG) and its manager.
const DOCTOR = personId();
const MANAGER = personId();
const STRUCTURE = String(1_700_000_000 + Math.floor(Math.random() * 99_999_999));
const system = { kind: 'system', id: 'test' } as const;
let now = Date.parse('2026-03-02T10:00:00Z');
const clock = { now: () => new Date(now) };
let gw: Gateway;
let fhir: FhirTestServer;

beforeAll(async () => {
  fhir = await startFhirServer(inject('pkiDir'));
  fhir.put({
    resourceType: 'Practitioner',
    id: `pr-${randomUUID()}`,
    identifier: [{ system: 'urn:oid:1.2.250.1.71.4.2.1', value: OWNER }],
  });
  for (const id of [DOCTOR, MANAGER]) {
    fhir.put({
      resourceType: 'Practitioner',
      id: `pr-${randomUUID()}`,
      identifier: [{ system: 'urn:oid:1.2.250.1.71.4.2.1', value: id }],
    });
  }
  fhir.put({
    resourceType: 'Organization',
    id: `org-${randomUUID()}`,
    identifier: [{ system: 'urn:oid:1.2.250.1.71.4.2.2', value: STRUCTURE }],
  });
  const config = testConfig({
    overrides: {
      publication: {
        enabled: true,
        fhir: { baseUrl: fhir.baseUrl },
        retryInitialSeconds: 0.05,
        retryMaxSeconds: 0.2,
      },
    },
  });
  gw = await Gateway.start(config, { logger: createLogger({ level: 'silent' }), clock });
});
afterAll(async () => {
  await gw?.stop();
  await fhir?.close();
});

async function publicationOf(address: string): Promise<string | undefined> {
  return (await gw.publication!.state(address))?.state;
}

async function runDailyJob(): Promise<void> {
  const before = journalEvents(gw.config.dataDir).filter((e) => e.event === 'lifecycle.run.finished').length;
  await gw.lifecycle.scheduler.trigger();
  await eventually(
    () =>
      Promise.resolve(
        journalEvents(gw.config.dataDir).filter((e) => e.event === 'lifecycle.run.finished').length,
      ),
    (n) => n > before,
  );
}

describe('mailbox lifecycle in the running gateway', () => {
  it('warns at day 30, unpublishes at day 45, republishes at the next login', async () => {
    const bal = uniqueBal('idle');
    await gw.registry.create({ address: bal, type: 'PER', owner: OWNER }, system);
    await eventually(
      () => publicationOf(bal),
      (s) => s === 'published',
    );

    now += 30 * DAY + 3_600_000;
    await runDailyJob();
    const inbox = await eventually(
      () => inboxMessages(bal),
      (m) => m.length === 1,
    );
    const warning = inbox[0]!.toString('latin1');
    expect(warning).toMatch(/^Subject: .*Votre/m);
    expect(warning).toMatch(/^Auto-Submitted: auto-generated/m);

    now += 15 * DAY;
    await runDailyJob();
    await eventually(
      () => publicationOf(bal),
      (s) => s === 'unpublished-inactive',
    );
    expect(fhir.requests.filter((r) => r.method === 'PATCH').length).toBeGreaterThanOrEqual(2);

    // The owner comes back: an IMAP login with a fresh token republishes at once.
    const token = await mintDevToken({
      pkiDir: inject('pkiDir'),
      subject: OWNER,
      ttlSeconds: 600,
      now: clock.now(),
    });
    const client = await gatewayClient(gw.addresses.imapTls!.port, bal, token, 'implicit');
    await client.logout();
    await eventually(
      () => publicationOf(bal),
      (s) => s === 'published',
    );
    const events = journalEvents(gw.config.dataDir).map((e) => e.event);
    expect(events).toContain('lifecycle.republished');
  });

  it('counts logins, sent and received messages in the daily indicators', async () => {
    const from = uniqueBal('ind-from');
    const to = uniqueBal('ind-to');
    await gw.registry.create({ address: from, type: 'PER', owner: OWNER }, system);
    await gw.registry.create({ address: to, type: 'PER', owner: OWNER }, system);
    const token = await mintDevToken({
      pkiDir: inject('pkiDir'),
      subject: OWNER,
      ttlSeconds: 600,
      now: clock.now(),
    });
    const transport = tokenSubmission(gw.addresses.submission!.port, from, token);
    await transport.sendMail({
      from,
      to,
      subject: 'CR',
      text: 'x',
      headers: { 'X-MSS-NIL': 'LPS-IND 2.1', 'X-MSS-CODECDA': '11488-4' },
    });
    transport.close();
    await eventually(
      () => inboxMessages(to),
      (m) => m.length === 1,
    );
    const report = new IndicatorReport({
      redis: gw.backends.redis,
      prefix: gw.config.redis.prefix,
      timeZone: gw.config.lifecycle.timeZone,
      retentionDays: gw.config.lifecycle.indicatorsRetentionDays,
      registry: gw.registry,
      activity: ActivityStore.withPrefix(gw.backends.redis, gw.config.redis.prefix),
    });
    const day = new Intl.DateTimeFormat('en-CA', { timeZone: gw.config.lifecycle.timeZone }).format(
      clock.now(),
    );
    const sent = await eventually(
      () => report.day(from, day),
      (d) => Number(d.counters['sent']) === 1,
    );
    expect(Number(sent.counters['sent.cda'])).toBe(1);
    expect(Number(sent.counters['login.submission'])).toBeGreaterThanOrEqual(1);
    expect(Object.keys(sent.software).join()).toContain('LPS-IND 2.1');
    const received = await eventually(
      () => report.day(to, day),
      (d) => d.counters['received'] !== undefined,
    );
    expect(Number(received.counters['received'])).toBe(1);
    expect(received.counters['received.inter']).toBeUndefined();
    // Counted from the headers captured at receipt (the message has left the spool by then).
    expect(Number(received.counters['received.cda'])).toBe(1);
    expect(received.software).toEqual({ 'received:LPS-IND 2.1': 1 });
  });

  it('counts what a peer operator delivers through the MX: CDA, software, DSN and MDN', async () => {
    const to = uniqueBal('ind-mx');
    await gw.registry.create({ address: to, type: 'PER', owner: OWNER }, system);
    const peer = peerMx(gw.addresses.mx!.port);
    const from = `martin@${PEER_DOMAIN}`;
    const report = (boundary: string, type: string, part: string) =>
      [
        `From: <${from}>`,
        `To: <${to}>`,
        'Subject: report',
        'MIME-Version: 1.0',
        `Content-Type: multipart/report; report-type=${type};`,
        `\tboundary="${boundary}"`,
        '',
        `--${boundary}`,
        'Content-Type: text/plain',
        '',
        'notice',
        `--${boundary}`,
        `Content-Type: message/${type}`,
        '',
        part,
        `--${boundary}--`,
        '',
      ].join('\r\n');
    await peer.sendMail({
      envelope: { from, to: [to] },
      raw: `From: <${from}>\r\nTo: <${to}>\r\nSubject: CR\r\nX-MSS-CODECDA: 11488-4,34133-9\r\nX-MSS-INS: O\r\nX-MSS-NIL: LPS-PEER 1.0\r\n\r\nx\r\n`,
    });
    // A DSN comes from the null reverse-path (RFC 3461 §6.2); an MDN from the reader's mailbox.
    await peer.sendMail({
      envelope: { from: '', to: [to] },
      raw: report(
        'dsn-b',
        'delivery-status',
        'Reporting-MTA: dns; mx.peer.mssante.test\r\n\r\nFinal-Recipient: rfc822; x@peer.mssante.test\r\nAction: failed\r\nStatus: 5.1.1',
      ),
    });
    await peer.sendMail({
      envelope: { from, to: [to] },
      raw: report(
        'mdn-b',
        'disposition-notification',
        'Final-Recipient: rfc822; martin@peer.mssante.test\r\nDisposition: manual-action/MDN-sent-manually; displayed',
      ),
    });
    peer.close();
    const day = new Intl.DateTimeFormat('en-CA', { timeZone: gw.config.lifecycle.timeZone }).format(
      clock.now(),
    );
    const indicators = new IndicatorReport({
      redis: gw.backends.redis,
      prefix: gw.config.redis.prefix,
      timeZone: gw.config.lifecycle.timeZone,
      retentionDays: gw.config.lifecycle.indicatorsRetentionDays,
      registry: gw.registry,
      activity: ActivityStore.withPrefix(gw.backends.redis, gw.config.redis.prefix),
    });
    const received = await eventually(
      () => indicators.day(to, day),
      (d) =>
        d.counters['received'] !== undefined &&
        d.counters['dsn.received'] !== undefined &&
        d.counters['mdn.received'] !== undefined,
    );
    expect(received.counters).toMatchObject({
      received: 1,
      'received.inter': 1,
      'received.cda': 1,
      'dsn.received': 1,
      'mdn.received': 1,
    });
    expect(received.software).toEqual({ 'received:LPS-PEER 1.0': 1 });
  });

  it('keeps the mail of a deleted mailbox for the retention, then purges it', async () => {
    const bal = uniqueBal('gone');
    await gw.registry.create({ address: bal, type: 'PER', owner: OWNER }, system);
    await gw.delivery.inject({
      from: '',
      to: bal,
      route: 'local',
      raw: Buffer.from('Subject: kept for a while\r\n\r\nbody\r\n'),
    });
    await eventually(
      () => inboxMessages(bal),
      (m) => m.length === 1,
    );
    await gw.registry.delete(bal, system);
    now += (gw.config.lifecycle.deletedMailRetentionDays - 1) * DAY;
    await runDailyJob();
    expect(await inboxMessages(bal)).toHaveLength(1);
    now += 2 * DAY;
    await runDailyJob();
    expect(await inboxMessages(bal)).toEqual([]);
    expect(journalEvents(gw.config.dataDir)).toEqual(
      expect.arrayContaining([expect.objectContaining({ event: 'lifecycle.mail.purged', address: bal })]),
    );
  });

  it('sends the warning to the owner’s other mailbox and to the managers of an ORG mailbox, once', async () => {
    const idle = uniqueBal('doc-idle');
    const other = uniqueBal('doc-other');
    const org = uniqueBal('cabinet');
    const mgr = uniqueBal('manager');
    await gw.registry.create({ address: idle, type: 'PER', owner: DOCTOR }, system);
    await gw.registry.create({ address: other, type: 'PER', owner: DOCTOR }, system);
    await gw.registry.create({ address: org, type: 'ORG', owner: STRUCTURE }, system);
    await gw.registry.create({ address: mgr, type: 'PER', owner: MANAGER }, system);
    await gw.registry.grant(org, { right: 'manager', person: MANAGER }, system);
    for (const bal of [idle, other, org, mgr]) {
      await eventually(
        () => publicationOf(bal),
        (s) => s === 'published',
      );
    }

    now += 30 * DAY + 3_600_000;
    // The doctor reads `other`, the manager reads `mgr`: those two are not warned themselves.
    await gw.registry.recordActivity(other, 'imap', clock.now());
    await gw.registry.recordActivity(mgr, 'imap', clock.now());
    await runDailyJob();
    const warningsOf = async (address: string) =>
      (await inboxMessages(address))
        .map((m) => m.toString('latin1'))
        .filter((t) => /^Auto-Submitted/m.test(t));
    for (const [box, about] of [
      [idle, idle],
      [other, idle],
      [org, org],
      [mgr, org],
    ] as const) {
      const got = await eventually(
        () => warningsOf(box),
        (m) => m.length === 1,
      );
      expect(got[0]).toMatch(new RegExp(`^To: <${box.replace(/\./g, '\\.')}>`, 'm'));
      // The text (quoted-printable, soft line breaks) names the mailbox warned.
      expect(got[0]!.replace(/=\r\n/g, '')).toContain(about);
    }
    const sent = () =>
      journalEvents(gw.config.dataDir).filter(
        (e) => e.event === 'lifecycle.warning.sent' && (e.address === idle || e.address === org),
      );
    expect(
      sent()
        .map((e) => `${String(e.address)} ${String(e.channel)} ${String(e.recipient)}`)
        .sort(),
    ).toEqual(
      [
        `${idle} mailbox ${idle}`,
        `${idle} owner_address ${other}`,
        `${org} mailbox ${org}`,
        `${org} manager_address ${mgr}`,
      ].sort(),
    );

    // A runner killed after sending and before marking the mailbox warned: the next run finds each
    // channel recorded for this period and sends nothing again. Then a plain next run: nothing.
    await gw.backends.redis.hdel(`${gw.config.redis.prefix}lifecycle:warned`, idle);
    now += DAY;
    await runDailyJob();
    expect(await gw.backends.redis.hexists(`${gw.config.redis.prefix}lifecycle:warned`, idle)).toBe(1);
    now += DAY;
    await runDailyJob();
    expect(sent()).toHaveLength(4);
    // A message delivered after the runs arrives behind anything they would have queued.
    for (const box of [idle, other, org, mgr]) {
      await gw.delivery.inject({
        from: '',
        to: box,
        route: 'local',
        raw: Buffer.from('Subject: marker\r\n\r\nbody\r\n'),
      });
      await eventually(
        () => inboxMessages(box),
        (m) => m.some((b) => b.toString('latin1').includes('Subject: marker')),
      );
      expect(await warningsOf(box)).toHaveLength(1);
    }
  });
});
