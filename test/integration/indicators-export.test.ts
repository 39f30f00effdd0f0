import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import {
  DAY_MS,
  IndicatorReport,
  MAX_CDA_CODES_PER_DAY,
  type MessageIndicator,
} from '../../src/lifecycle/index.js';
import type { ActivityChannel } from '../../src/registry/index.js';
import { uniqueAddress } from '../helpers/admin-harness.js';
import { runMssgwInProcess as mssgw } from '../helpers/admin-cli.js';
import { ACTOR, startLifecycleFixture, type LifecycleFixture } from '../helpers/lifecycle-fixture.js';

let fixture: LifecycleFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

/** RFC 4180 rows (quoted fields, doubled quotes), header first. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  for (const line of text.split('\r\n').filter((l) => l !== '')) {
    const fields: string[] = [];
    let i = 0;
    while (i <= line.length) {
      if (line[i] === '"') {
        let value = '';
        i += 1;
        while (i < line.length) {
          if (line[i] === '"' && line[i + 1] === '"') {
            value += '"';
            i += 2;
          } else if (line[i] === '"') {
            i += 1;
            break;
          } else value += line[i++];
        }
        fields.push(value);
        i += 1;
      } else {
        const end = line.indexOf(',', i);
        fields.push(line.slice(i, end < 0 ? line.length : end));
        i = end < 0 ? line.length + 1 : end + 1;
      }
    }
    rows.push(fields);
  }
  return rows;
}

function records(csv: string): Array<Record<string, string>> {
  const [header, ...rows] = parseCsv(csv);
  return rows.map((r) => Object.fromEntries((header ?? []).map((h, i) => [h, r[i] ?? ''])));
}

/** A small deterministic generator (mulberry32), so the generated month is the same at every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MARCH_START = Date.parse('2026-02-28T23:00:00.000Z'); // 1 March 00:00 in Paris
const CHANNELS: Array<Exclude<ActivityChannel, 'portal'>> = ['imap', 'submission', 'application'];
const SOFTWARE = ['LPS-Alpha 4.2', 'Cabinet+ 2026.1', 'HopitalSI 9'];
const CDA_CODES = ['11488-4', '34133-9', '18748-4'];

interface Expected {
  // The portal's "je garde cette adresse" is a use but no login of a mail client: not counted here.
  logins: Record<Exclude<ActivityChannel, 'portal'>, number>;
  activeDays: Set<string>;
  last: number;
  counters: Record<string, number>;
  softwareSent: Record<string, number>;
  softwareReceived: Record<string, number>;
  cdaSent: Record<string, number>;
  cdaReceived: Record<string, number>;
}

/** The daily report over the fixture's Redis, days in Paris. */
function parisReport(f: LifecycleFixture): IndicatorReport {
  return new IndicatorReport({
    redis: f.redis,
    prefix: f.prefix,
    timeZone: 'Europe/Paris',
    retentionDays: 430,
    registry: f.registry,
    activity: f.activity,
  });
}

describe('monthly indicators export', () => {
  it('matches totals computed by hand over a month of generated traffic', async () => {
    const f = startLifecycleFixture('2026-02-01T09:00:00.000Z');
    fixture = f;
    const create = async (label: string, type: 'PER' | 'ORG' | 'APP', owner: string) => {
      const address = uniqueAddress(label);
      await f.registry.create({ address, type, owner }, ACTOR);
      return address;
    };
    const busy = await create('a-busy', 'PER', '810000000001');
    const quiet = await create('b-quiet', 'ORG', '1750712184');
    const back = await create('c-back', 'APP', '1750712184');
    const gone = await create('d-gone', 'PER', '810000000003');
    const leftMidMonth = await create('e-left', 'PER', '810000000004');
    f.clock.set(Date.parse('2026-02-15T10:00:00Z'));
    await f.registry.delete(gone, ACTOR);
    f.clock.set(Date.parse('2026-03-20T10:00:00Z'));
    await f.registry.delete(leftMidMonth, ACTOR);
    f.clock.set(Date.parse('2026-04-02T10:00:00Z'));
    const late = await create('f-late', 'PER', '810000000005');

    const use = async (bal: string, channel: ActivityChannel, at: number) => {
      await f.registry.recordActivity(bal, channel, new Date(at));
      await f.indicators.recordActivity(bal, channel, new Date(at));
    };
    // The quiet mailbox: last used in February. The one that came back: used in February and April.
    await use(quiet, 'imap', Date.parse('2026-02-10T08:00:00Z'));
    await use(back, 'application', Date.parse('2026-02-20T08:00:00Z'));
    await use(back, 'application', Date.parse('2026-04-05T08:00:00Z'));
    // Just outside March in Paris time: 31 March 22:30 UTC is 1 April 00:30.
    await use(busy, 'imap', Date.parse('2026-03-31T22:30:00Z'));
    await f.indicators.recordMessage(
      { bal: busy, direction: 'sent', interOperator: true, toPatient: false, hasCda: true, kind: 'message' },
      new Date('2026-03-31T22:30:00Z'),
    );

    // A month of traffic for the busy mailbox, summed independently as it is generated.
    const next = random(20260301);
    const expected: Expected = {
      logins: { imap: 0, submission: 0, application: 0 },
      activeDays: new Set(),
      last: 0,
      counters: {},
      softwareSent: {},
      softwareReceived: {},
      cdaSent: {},
      cdaReceived: {},
    };
    const bump = (key: string) => (expected.counters[key] = (expected.counters[key] ?? 0) + 1);
    for (let day = 0; day < 31; day += 1) {
      const events = Math.floor(next() * 12);
      for (let e = 0; e < events; e += 1) {
        // Minutes into the Paris day, kept clear of the daylight-saving change on 29 March.
        const at = MARCH_START + day * DAY_MS + (180 + Math.floor(next() * 1200)) * 60_000;
        const what = next();
        if (what < 0.3) {
          const channel = CHANNELS[Math.floor(next() * 2)]!;
          await use(busy, channel, at);
          expected.logins[channel] += 1;
          expected.activeDays.add(String(day));
          expected.last = Math.max(expected.last, at);
          continue;
        }
        const kind: MessageIndicator['kind'] = what < 0.85 ? 'message' : what < 0.93 ? 'dsn' : 'mdn';
        const direction = next() < 0.5 ? 'sent' : 'received';
        // X-MSS-CODECDA with one or two codes (LOINC), X-MSS-INS O or N, X-MSS-MES FIN.
        const first = Math.floor(next() * CDA_CODES.length);
        const codes =
          next() < 0.3
            ? [...new Set([first, (first + 1) % CDA_CODES.length].slice(0, 1 + Math.floor(next() * 2)))].map(
                (i) => CDA_CODES[i]!,
              )
            : [];
        const ins = next() < 0.5 ? (next() < 0.5 ? 'O' : 'N') : undefined;
        const mes = next() < 0.1 ? 'FIN' : undefined;
        const event: MessageIndicator = {
          bal: busy,
          direction,
          interOperator: next() < 0.4,
          toPatient: next() < 0.2,
          hasCda: codes.length > 0,
          ...(codes.length > 0 ? { cda: codes.join(', ') } : {}),
          ...(ins ? { ins } : {}),
          ...(mes ? { mes } : {}),
          ...(next() < 0.8 ? { nil: SOFTWARE[Math.floor(next() * SOFTWARE.length)]! } : {}),
          kind,
        };
        await f.indicators.recordMessage(event, new Date(at));
        if (kind !== 'message') {
          bump(`${kind}_${direction}`);
          continue;
        }
        bump(`messages_${direction}`);
        bump(`messages_${direction}_${event.interOperator ? 'inter' : 'intra'}`);
        if (direction === 'sent' && event.toPatient) bump('messages_sent_to_patients');
        if (event.hasCda) bump(`messages_${direction}_with_cda`);
        if (ins === 'O') bump(`messages_${direction}_with_ins`);
        if (mes === 'FIN') bump(`messages_${direction}_mes_fin`);
        const cdaInto = direction === 'sent' ? expected.cdaSent : expected.cdaReceived;
        for (const code of codes) cdaInto[code] = (cdaInto[code] ?? 0) + 1;
        if (event.nil !== undefined) {
          const into = direction === 'sent' ? expected.softwareSent : expected.softwareReceived;
          into[event.nil] = (into[event.nil] ?? 0) + 1;
        }
      }
    }
    // A few fixed events for the mailbox deleted on 20 March.
    await use(leftMidMonth, 'submission', Date.parse('2026-03-02T10:00:00Z'));
    await f.indicators.recordMessage(
      {
        bal: leftMidMonth,
        direction: 'sent',
        interOperator: false,
        toPatient: true,
        hasCda: false,
        kind: 'message',
      },
      new Date('2026-03-02T10:01:00Z'),
    );

    const out = path.join(f.dataDir, 'indicators-2026-03.csv');
    const run = await mssgw(['indicators', 'export', '--month', '2026-03', '--out', out], {
      MSSGW_REDIS__URL: inject('redisUrl'),
      MSSGW_REDIS__PREFIX: f.prefix,
    });
    expect(run.stderr).toBe(`4 mailboxes of 2026-03 written to ${out}\n`);
    expect(run.code).toBe(0);
    const rows = records(readFileSync(out, 'utf8'));
    // Created after the month, or deleted before it: not listed.
    expect(rows.map((r) => r.address)).toEqual([busy, quiet, back, leftMidMonth]);
    expect(rows.map((r) => r.address)).not.toContain(gone);
    expect(rows.map((r) => r.address)).not.toContain(late);

    const n = (key: string) => String(expected.counters[key] ?? 0);
    const software = (counts: Record<string, number>) =>
      Object.keys(counts)
        .sort()
        .map((k) => `${k}=${counts[k]}`)
        .join(';');
    expect(rows[0]).toEqual({
      month: '2026-03',
      address: busy,
      type: 'PER',
      status: 'active',
      created_at: '2026-02-01T09:00:00.000Z',
      imap_logins: String(expected.logins.imap),
      submission_logins: String(expected.logins.submission),
      application_logins: '0',
      active_days: String(expected.activeDays.size),
      last_connection_at: new Date(expected.last).toISOString(),
      messages_sent: n('messages_sent'),
      messages_sent_intra: n('messages_sent_intra'),
      messages_sent_inter: n('messages_sent_inter'),
      messages_sent_to_patients: n('messages_sent_to_patients'),
      messages_sent_with_cda: n('messages_sent_with_cda'),
      messages_received: n('messages_received'),
      messages_received_intra: n('messages_received_intra'),
      messages_received_inter: n('messages_received_inter'),
      messages_received_with_cda: n('messages_received_with_cda'),
      messages_sent_with_ins: n('messages_sent_with_ins'),
      messages_received_with_ins: n('messages_received_with_ins'),
      messages_sent_mes_fin: n('messages_sent_mes_fin'),
      messages_received_mes_fin: n('messages_received_mes_fin'),
      dsn_sent: n('dsn_sent'),
      dsn_received: n('dsn_received'),
      mdn_sent: n('mdn_sent'),
      mdn_received: n('mdn_received'),
      software_sent: software(expected.softwareSent),
      software_received: software(expected.softwareReceived),
      cda_codes_sent: software(expected.cdaSent),
      cda_codes_received: software(expected.cdaReceived),
      // The fixture's registry has no indicator observer (the gateway's has: lifecycle-month test).
      bal_created: '0',
      bal_suspended: '0',
      bal_deleted: '0',
    });
    expect(Number(rows[0]?.messages_sent_with_ins)).toBeGreaterThan(0);
    expect(rows[0]?.cda_codes_sent).toMatch(/=\d+/);
    expect(Number(rows[0]?.messages_sent)).toBeGreaterThan(10);
    expect(expected.activeDays.size).toBeGreaterThan(5);

    expect(rows[1]).toMatchObject({
      address: quiet,
      type: 'ORG',
      imap_logins: '0',
      active_days: '0',
      last_connection_at: '2026-02-10T08:00:00.000Z',
      messages_sent: '0',
    });
    // Used again in April: its last connection up to the end of March is found in February's days.
    expect(rows[2]).toMatchObject({
      address: back,
      application_logins: '0',
      last_connection_at: '2026-02-20T08:00:00.000Z',
    });
    expect(rows[3]).toMatchObject({
      address: leftMidMonth,
      status: 'deleted',
      submission_logins: '1',
      active_days: '1',
      messages_sent: '1',
      messages_sent_intra: '1',
      messages_sent_to_patients: '1',
      last_connection_at: '2026-03-02T10:00:00.000Z',
    });

    // The daily aggregate behind it: 1 April (Paris) holds the event of 31 March 22:30 UTC.
    const report = parisReport(f);
    expect((await report.day(busy, '2026-04-01')).counters).toMatchObject({
      'login.imap': 1,
      sent: 1,
      'sent.inter': 1,
      'sent.cda': 1,
    });
    expect(await f.redis.ttl(`${f.prefix}indicators:2026-04-01:${busy}`)).toBeGreaterThan(429 * 86_400);
  });

  it('bounds the software values kept per mailbox and day', async () => {
    const f = startLifecycleFixture('2026-03-01T09:00:00.000Z', { maxSoftwarePerDay: 3 });
    fixture = f;
    const bal = uniqueAddress('lps');
    for (const nil of ['A', 'B', 'C', 'D', 'E', 'A']) {
      await f.indicators.recordMessage(
        {
          bal,
          direction: 'sent',
          interOperator: false,
          toPatient: false,
          hasCda: false,
          nil,
          kind: 'message',
        },
        new Date('2026-03-03T10:00:00Z'),
      );
    }
    const report = parisReport(f);
    expect((await report.day(bal, '2026-03-03')).software).toEqual({
      'sent:A': 2,
      'sent:B': 1,
      'sent:C': 1,
      'sent:(other)': 2,
    });
  });

  it('counts a batch (a second of deliveries) as the same messages one by one would', async () => {
    const f = startLifecycleFixture('2026-03-01T09:00:00.000Z', { maxSoftwarePerDay: 3 });
    fixture = f;
    const [one, two] = [uniqueAddress('batch'), uniqueAddress('batch')];
    const received = (bal: string, nil: string, at: string) => ({
      event: {
        bal,
        direction: 'received' as const,
        interOperator: true,
        toPatient: false,
        hasCda: true,
        cda: '11488-4',
        nil,
        kind: 'message' as const,
      },
      at: new Date(at),
    });
    // Two mailboxes, two days (Paris), software past its bound: one call.
    await f.indicators.recordMessages([
      ...['A', 'B', 'C', 'D', 'E', 'A'].map((nil) => received(one, nil, '2026-03-03T10:00:00Z')),
      received(one, 'A', '2026-03-03T23:30:00Z'),
      received(two, 'Z', '2026-03-03T10:00:00Z'),
    ]);
    const report = parisReport(f);
    const first = await report.day(one, '2026-03-03');
    expect(first.counters).toMatchObject({ received: 6, 'received.inter': 6, 'received.cda': 6 });
    expect(first.software).toEqual({
      'received:A': 2,
      'received:B': 1,
      'received:C': 1,
      'received:(other)': 2,
    });
    expect((await report.day(one, '2026-03-04')).counters).toMatchObject({ received: 1 });
    expect((await report.day(two, '2026-03-03')).software).toEqual({ 'received:Z': 1 });
    expect(await f.redis.ttl(`${f.prefix}indicators:2026-03-04:${one}`)).toBeGreaterThan(429 * 86_400);
  });

  it('bounds the CDA codes kept per mailbox and day, and counts a malformed code as (other)', async () => {
    const f = startLifecycleFixture('2026-03-01T09:00:00.000Z');
    fixture = f;
    const bal = uniqueAddress('cda');
    const send = (cda: string) =>
      f.indicators.recordMessage(
        {
          bal,
          direction: 'received',
          interOperator: true,
          toPatient: false,
          hasCda: true,
          cda,
          kind: 'message',
        },
        new Date('2026-03-04T10:00:00Z'),
      );
    // 250 distinct codes, 5 per message: the first MAX_CDA_CODES_PER_DAY are kept.
    for (let m = 0; m < 50; m += 1) {
      await send(Array.from({ length: 5 }, (_, i) => `${10_000 + m * 5 + i}-1`).join(','));
    }
    await send('10000-1, <script>');
    const report = parisReport(f);
    const { cda, counters } = await report.day(bal, '2026-03-04');
    expect(Object.keys(cda)).toHaveLength(MAX_CDA_CODES_PER_DAY + 1);
    expect(cda['received:10000-1']).toBe(2);
    expect(cda['received:10199-1']).toBe(1);
    expect(cda['received:10200-1']).toBeUndefined();
    // 50 codes over the bound, and the malformed token of the last message (its code list is new,
    // but the hash is full, so it would be (other) anyway).
    expect(cda['received:(other)']).toBe(51);
    expect(counters).toMatchObject({ received: 51, 'received.cda': 51, 'received.inter': 51 });
  });

  it('refuses a month that is not one, as a usage error', async () => {
    const run = await mssgw(['indicators', 'export', '--month', '2026-3'], {
      MSSGW_REDIS__URL: inject('redisUrl'),
    });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('give a month as YYYY-MM');
  });
});
