import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { FileAuditJournal } from '../../src/observability/index.js';
import { runMssgwInProcess as mssgw } from '../helpers/admin-cli.js';
import { TestClock } from '../helpers/lifecycle.js';

const DAY = 86_400_000;
const ALICE = 'alice@op.mssante.test';
const BOB = 'bob@op.mssante.test';
const PERSON = '810001234567';

let dir: string;

beforeEach(() => {
  dir = path.join(inject('scratchDir'), `journal-${randomUUID().slice(0, 8)}`);
  mkdirSync(dir, { recursive: true });
});

/** Three days of two nodes' entries, one node restarting in between (a new writer continues its chain). */
function writeThreeDays(): void {
  const clock = new TestClock('2026-03-01T08:00:00Z');
  const a = new FileAuditJournal({ dir, clock, node: 'node-a' });
  const b = new FileAuditJournal({ dir, clock, node: 'node-b' });
  a.record({ event: 'auth.succeeded', bal: ALICE, principal: { nationalId: PERSON }, channel: 'imap' });
  b.record({ event: 'smtp.mx.accepted', recipients: [BOB], messageId: '<1@x>' });
  clock.advance(DAY);
  a.record({ event: 'auth.failed', bal: BOB, reason: 'token_expired' });
  a.close();
  const restarted = new FileAuditJournal({ dir, clock, node: 'node-a' });
  restarted.record({ event: 'smtp.submission.accepted', bal: ALICE, principal: { nationalId: PERSON } });
  clock.advance(DAY);
  restarted.record({ event: 'registry.bal.created', address: BOB, actor: 'cli:ops' });
  b.record({ event: 'delivery.delivered', recipient: ALICE });
  restarted.close();
  b.close();
}

const file = (day: string) => path.join(dir, `audit-${day}.jsonl`);
const lines = (day: string) => readFileSync(file(day), 'utf8').split('\n').slice(0, -1);

describe('mssgw journal verify', () => {
  it('says intact for chains across days, restarts and two nodes', async () => {
    writeThreeDays();
    const run = await mssgw(['journal', 'verify', '--dir', dir]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('journal intact: 6 entries in 3 files (node-a to seq 4, node-b to seq 2)\n');
  });

  it('names an edited line and exits 1', async () => {
    writeThreeDays();
    const day2 = lines('2026-03-02');
    // Rewrite who failed to log in; everything else (seq, prev, hash) left as it was.
    day2[0] = day2[0]!.replace(BOB, 'mallory@op.mssante.test');
    writeFileSync(file('2026-03-02'), `${day2.join('\n')}\n`);
    const run = await mssgw(['journal', 'verify', '--dir', dir]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      `error: journal broken at ${file('2026-03-02')}:1 (node node-a, seq 2): edited: its hash does not match its content (JOURNAL_CHAIN_BROKEN)\n`,
    );
  });

  it('names the entry after a removed line', async () => {
    writeThreeDays();
    const day2 = lines('2026-03-02');
    writeFileSync(file('2026-03-02'), `${day2.slice(1).join('\n')}\n`);
    const run = await mssgw(['journal', 'verify', '--dir', dir]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `journal broken at ${file('2026-03-02')}:1 (node node-a, seq 3): does not follow seq 1 of node node-a (expected seq 2, 1 entries missing before it)`,
    );
  });

  it('finds a removed chain start', async () => {
    writeThreeDays();
    writeFileSync(file('2026-03-01'), `${lines('2026-03-01')[1]!}\n`);
    const startGone = await mssgw(['journal', 'verify', '--dir', dir]);
    // node-a's first entry is gone: its chain now begins in a later file, with nothing purged.
    expect(startGone.code).toBe(1);
    expect(startGone.stderr).toContain(':1 (node node-a, seq 2): chain of node node-a begins at seq 2');
  });

  it('finds a torn line', async () => {
    writeThreeDays();
    writeFileSync(file('2026-03-03'), `${lines('2026-03-03').join('\n')}\n{"time":"2026-03-03T08:0`);
    const torn = await mssgw(['journal', 'verify', '--dir', dir]);
    expect(torn.code).toBe(1);
    expect(torn.stderr).toContain('not a JSON object');
  });

  it('deletes files past the retention and journals it; the chain still verifies', async () => {
    writeThreeDays();
    const clock = new TestClock('2026-03-04T09:00:00Z');
    const journal = new FileAuditJournal({ dir, clock, node: 'node-a', retentionDays: 1 });
    journal.record({ event: 'gateway.started' });
    journal.close();
    expect(existsSync(file('2026-03-01'))).toBe(false);
    expect(existsSync(file('2026-03-02'))).toBe(false);
    expect(existsSync(file('2026-03-03'))).toBe(true);
    const purge = JSON.parse(lines('2026-03-04')[0]!) as Record<string, unknown>;
    expect(purge).toMatchObject({
      event: 'journal.purged',
      node: 'node-a',
      seq: 5,
      files: ['audit-2026-03-01.jsonl', 'audit-2026-03-02.jsonl'],
    });
    const run = await mssgw(['journal', 'verify', '--dir', dir]);
    expect(run.stdout).toBe('journal intact: 4 entries in 2 files (node-a to seq 6, node-b to seq 2)\n');
    expect(run.code).toBe(0);
  });
});

describe('mssgw journal search', () => {
  const search = async (...args: string[]) => {
    const run = await mssgw(['journal', 'search', '--dir', dir, '--json', ...args]);
    expect(run.code).toBe(0);
    return run.stdout
      .split('\n')
      .slice(0, -1)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  };

  it('filters by mailbox, person, event, prefix and time range', async () => {
    writeThreeDays();
    const events = (found: Array<Record<string, unknown>>) => found.map((e) => e.event);
    // Case-insensitive, in any field: bal, address, recipients, recipient.
    expect(events(await search('--mailbox', 'BOB@op.mssante.test'))).toEqual([
      'smtp.mx.accepted',
      'auth.failed',
      'registry.bal.created',
    ]);
    expect(events(await search('--person', PERSON))).toEqual(['auth.succeeded', 'smtp.submission.accepted']);
    expect(events(await search('--event', 'auth.failed'))).toEqual(['auth.failed']);
    expect(events(await search('--event', 'auth.'))).toEqual(['auth.succeeded', 'auth.failed']);
    expect(events(await search('--since', '2026-03-02', '--until', '2026-03-02T23:59:59Z'))).toEqual([
      'auth.failed',
      'smtp.submission.accepted',
    ]);
    expect(events(await search('--mailbox', ALICE, '--since', '2026-03-02'))).toEqual([
      'smtp.submission.accepted',
      'delivery.delivered',
    ]);
    expect(await search('--mailbox', 'nobody@op.mssante.test')).toEqual([]);
  });

  it('prints a table by default and refuses a bad time', async () => {
    writeThreeDays();
    const run = await mssgw(['journal', 'search', '--dir', dir, '--event', 'auth.failed']);
    expect(run.stdout).toBe(
      `2026-03-02T08:00:00.000Z  node-a  auth.failed  bal=${BOB} reason=token_expired\n`,
    );
    expect(run.stderr).toBe('1 entries\n');
    const bad = await mssgw(['journal', 'search', '--dir', dir, '--since', 'yesterday']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('give an ISO-8601 time');
  });
});
