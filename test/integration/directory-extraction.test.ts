import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { loadExtraction } from '../../src/directory/index.js';
import { CommandPipe, HashWriter } from '../../src/directory/extraction-writer.js';
import { createRedisClient } from '../../src/redis/index.js';
import {
  type MirrorsHarness,
  scratchDir,
  startMirrors,
  uniquePrefix,
  useNationalServer,
} from '../helpers/directory-harness.js';
import { EXTRACTION_HEADER, extractionLine, extractionText, zipOf } from '../helpers/national-data.js';

const DOMAIN = 'ch-exemple.mssante.fr';
const addr = (i: number) => `user${i}@${DOMAIN}`;

const { server, track } = useNationalServer();

async function mirrorsFor(source: string, extraction: Record<string, unknown> = {}) {
  return track(startMirrors({ directory: { extraction: { source, ...extraction } } }));
}

/** The versions' data keys with their per-person indexes (`:pp`) and digests (`:d`), sorted. */
async function versionKeys(h: MirrorsHarness): Promise<string[]> {
  return (await h.redis.keys(`${h.config.redis.prefix}dir:{dir:extraction}:v:*`)).sort();
}

const versionAndIndex = (h: MirrorsHarness, v: number) => {
  const key = `${h.config.redis.prefix}dir:{dir:extraction}:v:${v}`;
  return [key, `${key}:d`, `${key}:pp`];
};

describe('BAL extraction mirror', () => {
  it('loads a ZIP over HTTPS, merges duplicates, answers lookups and counts differences', async () => {
    // A repeated line, and a repeat that fills a field the first line left empty.
    const gap = extractionLine(addr(7), 7).replace('|Cardiologie|', '||');
    const text =
      extractionText(1000).replace(`${extractionLine(addr(7), 7)}\n`, `${gap}\n`) +
      `${extractionLine(addr(5), 5)}\n${extractionLine(addr(7), 7)}\n`;
    server().serve('/extraction.zip', await zipOf({ 'Extraction_Correspondance_MSSante.txt': text }));
    const h = await mirrorsFor(server().url('/extraction.zip'));
    expect(h.mirrors.mirrors).toEqual(['whitelist', 'extraction']);
    expect(await h.mirrors.directory.isKnown(addr(5))).toBe(false);

    expect(await h.mirrors.refresh('extraction')).toMatchObject({
      outcome: 'accepted',
      reason: 'ok',
      version: 1,
      entries: 1000,
    });
    expect(h.events('directory.mirror.accepted')[0]).toMatchObject({
      entries: 1000,
      lines: 1002,
      duplicates: 2,
      conflicts: 0,
      invalid: 0,
      zipped: true,
    });
    const dir = h.mirrors.directory;
    expect(await dir.entryOf(`USER5@${DOMAIN.toUpperCase()}`)).toMatchObject({
      address: addr(5),
      type: 'PER',
      personIdType: '8',
      personId: '10000000005',
      nationalId: '810000000005',
      structureIdType: '4',
      structureId: '1690000005',
      service: 'Cardiologie',
      lastName: 'NOM5',
      firstName: 'Prénom5',
      profession: 'Médecin',
      organisation: 'CENTRE HOSPITALIER 5',
      postalCode: '69000',
      city: '69000 LYON',
    });
    expect((await dir.entryOf(addr(7)))?.service).toBe('Cardiologie');
    // The per-person index (issue #13): a person's addresses, with their entries.
    expect((await dir.addressesOf('810000000005'))?.map((e) => [e.address, e.lastName])).toEqual([
      [addr(5), 'NOM5'],
    ]);
    expect(await dir.addressesOf('810000099999')).toEqual([]);
    const org = await dir.entryOf(addr(10));
    expect(org).toMatchObject({ type: 'ORG', structureId: '1690000010' });
    expect(org?.nationalId).toBeUndefined();
    expect(await dir.isKnown(`inconnu@${DOMAIN}`)).toBe(false);
    expect(await dir.knownAmong([addr(1), 'pas une adresse', addr(5000), addr(999)])).toEqual(
      new Set([addr(1), addr(999)]),
    );

    server().serve(
      '/extraction.zip',
      await zipOf({ 'Extraction_Correspondance_MSSante.txt': extractionText(1000, { from: 50 }) }),
    );
    expect(await h.mirrors.refresh('extraction')).toMatchObject({
      outcome: 'accepted',
      version: 2,
      entries: 1000,
      added: 50,
      removed: 50,
    });
    expect(await dir.isKnown(addr(10))).toBe(false);
    expect(await dir.isKnown(addr(1049))).toBe(true);
    expect(await versionKeys(h)).toEqual(versionAndIndex(h, 2));
    expect(await dir.size()).toEqual({ version: 2, entries: 1000 });
    const status = (await h.mirrors.status()).find((s) => s.mirror === 'extraction');
    expect(status).toMatchObject({
      version: 2,
      entries: 1000,
      added: 50,
      removed: 50,
      lastOutcome: 'accepted',
    });
  });

  it('reads a text file source with a byte-order mark and CRLF line ends', async () => {
    const file = path.join(scratchDir('extraction'), 'Extraction_Correspondance_MSSante.txt');
    writeFileSync(file, `\uFEFF${extractionText(20).replace(/\n/g, '\r\n')}`);
    const h = await mirrorsFor(file);
    expect(await h.mirrors.refresh('extraction')).toMatchObject({ outcome: 'accepted', entries: 20 });
    expect(await h.mirrors.directory.entryOf(addr(3))).toMatchObject({ type: 'PER', country: 'FRANCE' });
    expect(h.events('directory.mirror.accepted')[0]).toMatchObject({ zipped: false, source: file });
  });

  it('refuses broken, truncated, foreign or shrunk copies and keeps serving the last good one', async () => {
    const good = extractionText(500);
    const goodZip = await zipOf({ 'Extraction_Correspondance_MSSante.txt': good });
    server().serve('/bad.zip', goodZip);
    const h = await mirrorsFor(server().url('/bad.zip'));
    expect((await h.mirrors.refresh('extraction')).outcome).toBe('accepted');

    const attempts: Array<[string, Buffer | string, string]> = [
      ['truncated ZIP', goodZip.subarray(0, Math.floor(goodZip.length * 0.6)), 'malformed'],
      ['corrupted ZIP', corrupt(goodZip), 'malformed'],
      ['ZIP with unrelated files', await zipOf({ 'a.txt': good, 'b.txt': good }), 'malformed'],
      ['text cut in the middle of a line', good.slice(0, good.length - 40), 'malformed'],
      ['not the extraction', `Nom|Prenom\nDUPONT|Jeanne\n`, 'malformed'],
      ['header only', `${EXTRACTION_HEADER}\n`, 'empty'],
      ['unusable lines', `${good}${'PER|pas-une-adresse|x\n'.repeat(5)}`, 'invalid_lines'],
      ['abnormal shrink', extractionText(400), 'shrink'],
    ];
    for (const [what, body, reason] of attempts) {
      server().serve('/bad.zip', body);
      const r = await h.mirrors.refresh('extraction');
      expect({ what, outcome: r.outcome, reason: r.reason, version: r.version }).toEqual({
        what,
        outcome: 'refused',
        reason,
        version: 1,
      });
    }
    expect(h.events('directory.mirror.refused').map((e) => e.reason)).toEqual(attempts.map((a) => a[2]));
    expect(await h.mirrors.directory.isKnown(addr(499))).toBe(true);
    expect(await h.mirrors.directory.size()).toEqual({ version: 1, entries: 500 });
    expect(await versionKeys(h)).toEqual(versionAndIndex(h, 1));
  });

  it('tolerates a few unusable lines within maxInvalidShare', async () => {
    server().serve('/tolerant.txt', `${extractionText(100)}PER|pas-une-adresse|x\n`);
    const h = await mirrorsFor(server().url('/tolerant.txt'), { maxInvalidShare: 0.02 });
    expect(await h.mirrors.refresh('extraction')).toMatchObject({ outcome: 'accepted', entries: 100 });
    expect(h.events('directory.mirror.accepted')[0]).toMatchObject({ invalid: 1, lines: 101 });
  });
});

/** Flips bytes in the middle of the compressed data: the ZIP still opens but its content is wrong. */
function corrupt(zip: Buffer): Buffer {
  const copy = Buffer.from(zip);
  const middle = Math.floor(copy.length / 2);
  for (let i = middle; i < middle + 16; i++) copy[i] = copy[i]! ^ 0xff;
  return copy;
}

describe('extraction loader batches', () => {
  it('stores the same copy, index and counts whatever the batch size (repeats across batches)', async () => {
    const redis = createRedisClient(inject('redisUrl'), { name: 'test-extraction-batches' });
    const prefix = uniquePrefix();
    const dir = scratchDir('extraction-batches');
    // Repeats far apart (first line wins, a later one fills a gap, one disagrees), a person with
    // addresses spread over the file, and a next day's copy for the differences.
    const gap = extractionLine(addr(3), 3).replace('|Cardiologie|', '||');
    const other = extractionLine(addr(4), 4).replace('|NOM4|', '|AUTRE|');
    const second = extractionLine(addr(100), 3);
    // An address first listed without its person id, which a repeat fills in.
    const anonymous = extractionLine(addr(200), 9).replace('|810000000009|', '||');
    const lines = [
      EXTRACTION_HEADER,
      ...Array.from({ length: 60 }, (_, i) => (i === 3 ? gap : extractionLine(addr(i), i))),
      extractionLine(addr(3), 3),
      other,
      second,
      anonymous,
      extractionLine(addr(0), 0),
      extractionLine(addr(200), 9),
    ];
    const day1 = path.join(dir, 'day1.txt');
    writeFileSync(day1, `${lines.join('\n')}\n`);
    const day2 = path.join(dir, 'day2.txt');
    writeFileSync(day2, extractionText(60, { from: 5, domain: DOMAIN }));
    const load = async (batchSize: number) => {
      const key = `${prefix}b${batchSize}:{x}:v:1`;
      const first = await loadExtraction({ redis, file: day1, target: key, maxInvalidShare: 0, batchSize });
      const next = await loadExtraction({
        redis,
        file: day2,
        target: `${prefix}b${batchSize}:{x}:v:2`,
        maxInvalidShare: 0,
        batchSize,
        previous: { key, entries: first.entries },
      });
      return {
        first,
        next,
        data: await redis.hgetall(key),
        persons: await redis.hgetall(`${key}:pp`),
      };
    };
    try {
      const whole = await load(10_000);
      expect(whole.first).toMatchObject({ entries: 62, lines: 66, duplicates: 4, conflicts: 1, invalid: 0 });
      expect(whole.next).toMatchObject({ entries: 60, added: 5, removed: 7 });
      expect(whole.data[addr(3)]).toContain('|Cardiologie|');
      expect(whole.data[addr(4)]).toContain('|NOM4|');
      expect(whole.persons['810000000003']).toBe(`${addr(3)} ${addr(100)}`);
      expect(whole.persons['810000000009']).toBe(`${addr(9)} ${addr(200)}`);
      expect(whole.data[addr(200)]).toContain('|810000000009|');
      for (const size of [1, 7]) expect(await load(size)).toEqual(whole);
      // A copy stored before digests were kept beside it: its addresses are read from the hash.
      const key = `${prefix}b10000:{x}:v:1`;
      expect(await redis.strlen(`${key}:d`)).toBe(62 * 8);
      await redis.unlink(`${key}:d`);
      const again = await loadExtraction({
        redis,
        file: day2,
        target: `${prefix}b10000:{x}:v:3`,
        maxInvalidShare: 0,
        previous: { key, entries: 62 },
      });
      expect(again).toEqual(whole.next);
    } finally {
      await redis.quit().catch(() => redis.disconnect());
    }
  });
});

describe('HSETs with values written in place', () => {
  it('stores values of every length, whose length head has fewer or more digits than guessed', async () => {
    const redis = createRedisClient(inject('redisUrl'), { name: 'test-extraction-writer' });
    const key = `${uniquePrefix()}w:{x}:v:1`;
    // Lengths around each change of digit count, and one written in a command of its own.
    const lengths = [0, 1, 9, 10, 99, 100, 101, 999, 1000, 1001, 9999, 10_000, 99_999, 100_000, 300_000];
    const value = (n: number) =>
      Array.from({ length: n }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
    try {
      const pipe = new CommandPipe(redis, 64 * 1024);
      // Room for two small entries a command: most entries fill the buffer and send it.
      const writer = new HashWriter(pipe, key, 3, 512);
      for (const n of lengths) {
        const field = Buffer.from(`field-${n}`);
        const at = writer.beginEntry(field, 0, field.length, n);
        const end = writer.buffer.write(value(n), at, 'latin1') + at;
        writer.endEntry(end);
        await pipe.drain();
      }
      writer.flush();
      await pipe.drain(0);
      const stored = await redis.hgetall(key);
      expect(Object.keys(stored).sort()).toEqual(lengths.map((n) => `field-${n}`).sort());
      for (const n of lengths) expect({ n, value: stored[`field-${n}`] }).toEqual({ n, value: value(n) });
    } finally {
      await redis.unlink(key);
      await redis.quit().catch(() => redis.disconnect());
    }
  });
});
