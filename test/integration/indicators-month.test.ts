import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { SendMailOptions } from 'nodemailer';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Gateway } from '../../src/app/index.js';
import { mintDevToken } from '../../src/auth/index.js';
import { INDICATOR_CSV_COLUMNS, IndicatorReport } from '../../src/lifecycle/index.js';
import { createLogger } from '../../src/observability/index.js';
import { ActivityStore } from '../../src/registry/index.js';
import { runMssgwInProcess as mssgw } from '../helpers/admin-cli.js';
import { PEER_DOMAIN, testConfig, uniqueBal } from '../helpers/gateway.js';
import { eventually, inboxMessages } from '../helpers/mailbox.js';
import { peerMx, tokenSubmission } from '../helpers/smtp-clients.js';

/**
 * Issue #14 item 1: a small "month" of traffic through the real MX (a peer operator's certificate)
 * and submission (XOAUTH2), plus mailboxes created, suspended and deleted through the registry, then
 * the month's CSV from `mssgw indicators export`, every column compared to totals derived by hand.
 * Two days of December 2026 (the gateway's clock), 10:00 in Paris.
 */

const DAY1 = Date.parse('2026-12-02T09:00:00Z');
const DAY2 = Date.parse('2026-12-03T09:00:00Z');
let now = DAY1;
const clock = { now: () => new Date(now) };
const system = { kind: 'system', id: 'test' } as const;
const OWNER = `8${String(Math.floor(Math.random() * 1e11)).padStart(11, '0')}`;
// A valid INS: NIR 1850578006084, key 97 − (1850578006084 mod 97) = 91.
const PATIENT = '185057800608491@patient.mssante.fr';
const PEER = `martin@${PEER_DOMAIN}`;
let gw: Gateway;

beforeAll(async () => {
  // Relay off: mail for the peer and the patient stays queued (no DSN of ours comes back to count).
  const config = testConfig({ overrides: { relay: { enabled: false } } });
  gw = await Gateway.start(config, { logger: createLogger({ level: 'silent' }), clock });
});
afterAll(async () => {
  await gw?.stop();
});

async function submit(from: string, mail: SendMailOptions): Promise<void> {
  const token = await mintDevToken({
    pkiDir: inject('pkiDir'),
    subject: OWNER,
    ttlSeconds: 600,
    now: clock.now(),
  });
  // One connection, so one submission login, per message.
  const transport = tokenSubmission(gw.addresses.submission!.port, from, token);
  try {
    await transport.sendMail({ from, subject: 'CR', text: 'x', ...mail });
  } finally {
    transport.close();
  }
}

async function fromPeer(from: string, to: readonly string[], raw: string): Promise<void> {
  const peer = peerMx(gw.addresses.mx!.port);
  try {
    await peer.sendMail({ envelope: { from, to: [...to] }, raw });
  } finally {
    peer.close();
  }
}

function report(from: string, to: string, type: string, part: string): string {
  const boundary = `b-${type}`;
  return [
    `From: <${from || `mailer-daemon@${PEER_DOMAIN}`}>`,
    `To: <${to}>`,
    'Subject: report',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=${type}; boundary="${boundary}"`,
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
}

describe('a month of traffic in the monthly indicators', () => {
  it('matches hand-computed totals in every column of the CSV', async () => {
    // Addresses sort in this order (a…, b…, c…, d…): the CSV lists them so.
    const doc = uniqueBal('a-doc');
    const team = uniqueBal('b-team');
    const temp1 = uniqueBal('c-temp');
    const temp2 = uniqueBal('d-temp');

    // ---- Day 1 -----------------------------------------------------------------------------
    await gw.registry.create({ address: doc, type: 'PER', owner: OWNER }, system);
    await gw.registry.create({ address: team, type: 'ORG', owner: '41690000001' }, system);
    await gw.registry.create({ address: temp1, type: 'PER', owner: OWNER }, system);
    await gw.registry.create({ address: temp2, type: 'PER', owner: OWNER }, system);
    await gw.registry.suspend(temp2, system, 'test');

    const nil = { 'X-MSS-NIL': 'LPS-A 1.0' };
    // S1: intra, one CDA code, qualified identity.
    await submit(doc, { to: team, headers: { ...nil, 'X-MSS-CODECDA': '11488-4', 'X-MSS-INS': 'O' } });
    // S2: intra, two CDA codes, identity not qualified (N: not counted).
    await submit(doc, {
      to: team,
      headers: { ...nil, 'X-MSS-CODECDA': '11488-4, 34133-9', 'X-MSS-INS': 'N' },
    });
    // S3: to another operator (queued), one CDA code.
    await submit(doc, { to: PEER, headers: { ...nil, 'X-MSS-CODECDA': '18748-4' } });
    // S4: to a patient (relay, so inter-operator too), qualified identity, closes the conversation.
    await submit(doc, { to: PATIENT, headers: { ...nil, 'X-MSS-INS': 'O', 'X-MSS-MES': 'FIN' } });
    // M1: the peer to the team: CDA, qualified identity, its software.
    await fromPeer(
      PEER,
      [team],
      `From: <${PEER}>\r\nTo: <${team}>\r\nSubject: CR\r\nX-MSS-CODECDA: 11488-4\r\nX-MSS-INS: O\r\nX-MSS-NIL: LPS-PEER 2\r\n\r\nx\r\n`,
    );
    // M2: the peer to the doctor, closing the conversation.
    await fromPeer(
      PEER,
      [doc],
      `From: <${PEER}>\r\nTo: <${doc}>\r\nSubject: Re\r\nX-MSS-MES: FIN\r\nX-MSS-NIL: LPS-PEER 2\r\n\r\nx\r\n`,
    );

    // ---- Day 2 -----------------------------------------------------------------------------
    now = DAY2;
    await gw.registry.suspend(temp1, system, 'test');
    await gw.registry.resume(temp2, system);
    await gw.registry.suspend(temp2, system, 'test');
    await gw.registry.delete(temp2, system);
    // S5: intra, no X-MSS-* header at all.
    await submit(doc, { to: team });
    // S6: a read receipt (MDN) from the doctor to the team.
    await submit(doc, {
      envelope: { from: doc, to: [team] },
      raw: report(
        doc,
        team,
        'disposition-notification',
        `Final-Recipient: rfc822; ${doc}\r\nDisposition: manual-action/MDN-sent-manually; displayed`,
      ),
    });
    // M3: a DSN (null reverse-path) from the peer to the doctor.
    await fromPeer(
      '',
      [doc],
      report(
        '',
        doc,
        'delivery-status',
        'Reporting-MTA: dns; mx.peer.mssante.test\r\n\r\nFinal-Recipient: rfc822; x@peer.mssante.test\r\nAction: failed\r\nStatus: 5.1.1',
      ),
    );
    // M4: the peer to both, with a CDA code.
    await fromPeer(
      PEER,
      [doc, team],
      `From: <${PEER}>\r\nTo: <${doc}>, <${team}>\r\nSubject: CR2\r\nX-MSS-CODECDA: 11488-4\r\nX-MSS-NIL: LPS-PEER 2\r\n\r\nx\r\n`,
    );

    // Everything delivered, then counted (counting follows the delivery, asynchronously).
    await eventually(
      () => inboxMessages(doc),
      (m) => m.length === 3,
    ); // M2, M3, M4
    await eventually(
      () => inboxMessages(team),
      (m) => m.length === 6,
    ); // S1, S2, S5, S6, M1, M4
    const days = new IndicatorReport({
      redis: gw.backends.redis,
      prefix: gw.config.redis.prefix,
      timeZone: gw.config.lifecycle.timeZone,
      retentionDays: gw.config.lifecycle.indicatorsRetentionDays,
      registry: gw.registry,
      activity: ActivityStore.withPrefix(gw.backends.redis, gw.config.redis.prefix),
    });
    const total = async (address: string, field: string): Promise<number> => {
      const [a, b] = await Promise.all([days.day(address, '2026-12-02'), days.day(address, '2026-12-03')]);
      return (a.counters[field] ?? 0) + (b.counters[field] ?? 0);
    };
    await eventually(
      async () =>
        (await total(doc, 'received')) +
        (await total(doc, 'dsn.received')) +
        (await total(team, 'received')) +
        (await total(team, 'mdn.received')),
      (n) => n === 2 + 1 + 5 + 1,
    );

    const out = path.join(gw.config.dataDir, 'indicators-2026-12.csv');
    const run = await mssgw(['indicators', 'export', '--month', '2026-12', '--out', out], {
      MSSGW_REDIS__URL: inject('redisUrl'),
      MSSGW_REDIS__PREFIX: gw.config.redis.prefix,
    });
    expect(run.stderr).toBe(`4 mailboxes of 2026-12 written to ${out}\n`);
    expect(run.code).toBe(0);
    const csv = readFileSync(out, 'utf8');
    // No cell here needs quoting, so a plain split reads it.
    expect(csv).not.toContain('"');
    const [header, ...lines] = csv.split('\r\n').filter((l) => l !== '');
    expect(header).toBe(INDICATOR_CSV_COLUMNS.join(','));
    const rows = lines.map((l): Record<string, string> =>
      Object.fromEntries(l.split(',').map((v, i): [string, string] => [INDICATOR_CSV_COLUMNS[i] ?? '', v])),
    );

    const created = '2026-12-02T09:00:00.000Z';
    const none = {
      imap_logins: '0',
      submission_logins: '0',
      application_logins: '0',
      active_days: '0',
      last_connection_at: '',
      messages_sent: '0',
      messages_sent_intra: '0',
      messages_sent_inter: '0',
      messages_sent_to_patients: '0',
      messages_sent_with_cda: '0',
      messages_received: '0',
      messages_received_intra: '0',
      messages_received_inter: '0',
      messages_received_with_cda: '0',
      messages_sent_with_ins: '0',
      messages_received_with_ins: '0',
      messages_sent_mes_fin: '0',
      messages_received_mes_fin: '0',
      dsn_sent: '0',
      dsn_received: '0',
      mdn_sent: '0',
      mdn_received: '0',
      software_sent: '',
      software_received: '',
      cda_codes_sent: '',
      cda_codes_received: '',
    };
    expect(rows).toEqual([
      {
        month: '2026-12',
        address: doc,
        type: 'PER',
        status: 'active',
        created_at: created,
        imap_logins: '0',
        submission_logins: '6', // S1–S6, one connection and login each
        application_logins: '0',
        active_days: '2', // S1–S4 on day 1, S5–S6 on day 2
        last_connection_at: '2026-12-03T09:00:00.000Z', // S5/S6, the clock stood still on day 2
        messages_sent: '5', // S1–S5 (S6 is an MDN, counted apart)
        messages_sent_intra: '3', // S1, S2, S5: the team only
        messages_sent_inter: '2', // S3 (peer), S4 (patient, relayed)
        messages_sent_to_patients: '1', // S4
        messages_sent_with_cda: '3', // S1, S2, S3
        messages_received: '2', // M2, M4 (M3 is a DSN)
        messages_received_intra: '0',
        messages_received_inter: '2', // both through the MX
        messages_received_with_cda: '1', // M4
        messages_sent_with_ins: '2', // S1 and S4 say O; S2 says N
        messages_received_with_ins: '0',
        messages_sent_mes_fin: '1', // S4
        messages_received_mes_fin: '1', // M2
        dsn_sent: '0',
        dsn_received: '1', // M3
        mdn_sent: '1', // S6
        mdn_received: '0',
        software_sent: 'LPS-A 1.0=4', // S1–S4 (S5 has none)
        software_received: 'LPS-PEER 2=2', // M2, M4
        cda_codes_sent: '11488-4=2;18748-4=1;34133-9=1', // 11488-4: S1, S2; 34133-9: S2; 18748-4: S3
        cda_codes_received: '11488-4=1', // M4
        bal_created: '1',
        bal_suspended: '0',
        bal_deleted: '0',
      },
      {
        ...none,
        month: '2026-12',
        address: team,
        type: 'ORG',
        status: 'active',
        created_at: created,
        messages_received: '5', // S1, S2, S5 (intra), M1, M4 (inter); S6 is an MDN
        messages_received_intra: '3', // S1, S2, S5
        messages_received_inter: '2', // M1, M4
        messages_received_with_cda: '4', // S1, S2, M1, M4
        messages_received_with_ins: '2', // S1 (O), M1 (O); S2 says N
        mdn_received: '1', // S6
        software_received: 'LPS-A 1.0=2;LPS-PEER 2=2', // S1, S2; M1, M4
        cda_codes_received: '11488-4=4;34133-9=1', // 11488-4: S1, S2, M1, M4; 34133-9: S2
        bal_created: '1',
        bal_suspended: '0',
        bal_deleted: '0',
      },
      {
        ...none,
        month: '2026-12',
        address: temp1,
        type: 'PER',
        status: 'suspended',
        created_at: created,
        bal_created: '1', // day 1
        bal_suspended: '1', // day 2
        bal_deleted: '0',
      },
      {
        ...none,
        month: '2026-12',
        address: temp2,
        type: 'PER',
        status: 'deleted',
        created_at: created,
        bal_created: '1', // day 1
        bal_suspended: '2', // day 1, and again on day 2 after a resume
        bal_deleted: '1', // day 2
      },
    ]);
  });
});
