import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileAuditJournal, verifyJournal } from '../../src/observability/index.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('the audit journal line', () => {
  it('is the JSON of its entry with the hash last, and the chain verifies', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mssgw-journal-line-'));
    dirs.push(dir);
    const journal = new FileAuditJournal({ dir, clock: { now: () => new Date('2026-12-07T21:00:00Z') } });
    const seen: unknown[] = [];
    journal.onRecord((entry) => seen.push(entry));
    journal.record({ event: 'smtp.mx.accepted', spoolId: 'a1', to: ['x@y.test'], size: 8300, dn: undefined });
    journal.record({
      event: 'test.nested',
      at: new Date('2026-01-02T03:04:05Z'),
      10: 'ten',
      n: { b: 1, a: [null] },
    });
    journal.record({ event: 'test.odd', hash: 'forged', text: 'é "quoted"\u2028' });
    journal.close();
    const [file] = readdirSync(dir);
    const lines = readFileSync(path.join(dir, file!), 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    for (const [i, text] of lines.entries()) {
      const parsed = JSON.parse(text) as Record<string, unknown>;
      // Byte for byte what JSON.stringify writes for the parsed line, and what listeners got.
      expect(text).toBe(JSON.stringify(parsed));
      expect(seen[i]).toEqual(parsed);
      // An event's own `hash` field keeps its place and takes the chain's value.
      expect(Object.keys(parsed).at(-1)).toBe(i === 2 ? 'prev' : 'hash');
    }
    expect(JSON.parse(lines[0]!)).not.toHaveProperty('dn');
    expect(JSON.parse(lines[1]!)).toMatchObject({ at: '2026-01-02T03:04:05.000Z', 10: 'ten' });
    const report = await verifyJournal(dir);
    expect(report.broken).toEqual([]);
    expect(report.entries).toBe(3);
  });
});
