import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import yazl from 'yazl';
import {
  ENTRY_FIELDS,
  columnMap,
  decodeValues,
  encodeValues,
  entryFrom,
  headerKey,
  mergeValues,
  parseRow,
} from '../../src/directory/extraction-format.js';
import { DigestSet, digestOf } from '../../src/directory/extraction-digests.js';
import { ByteLines, openExtraction } from '../../src/directory/extraction-input.js';
import { RowReader } from '../../src/directory/extraction-rows.js';
import { checkShrink } from '../../src/directory/mirror-kinds.js';
import { GatewayError } from '../../src/errors/index.js';
import { normalizeAddress } from '../../src/shared/index.js';
import { EXTRACTION_HEADER, extractionLine } from '../helpers/national-data.js';

function refusedReason(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('MIRROR_COPY_REFUSED');
    return (err as GatewayError).details.reason;
  }
  throw new Error('expected a refusal');
}

describe('extraction columns', () => {
  it('matches columns by name, tolerating accents, case, spacing and the " structure BAL" suffix', () => {
    expect(headerKey('\uFEFFType de BAL')).toBe('type de bal');
    expect(headerKey('Raison Sociale structure BAL')).toBe('raison sociale');
    expect(headerKey('Raison  sociale')).toBe('raison sociale');
    expect(headerKey('Prénom d’exercice')).toBe("prenom d'exercice");
    expect(headerKey('DÃ©partement structure BAL')).not.toBe('departement'); // mis-decoded: not guessed

    // The same fields in another order, without suffixes, with fewer columns.
    const map = columnMap('Adresse BAL|Identification nationale PP|Type de BAL|Raison sociale|Code postal');
    const row = parseRow('Jeanne.Dupont@CH-Exemple.mssante.fr|810000000001|per|CH EXEMPLE|69000', map);
    expect(row && entryFrom(row.address, row.values)).toEqual({
      address: 'jeanne.dupont@ch-exemple.mssante.fr',
      type: 'PER',
      nationalId: '810000000001',
      organisation: 'CH EXEMPLE',
      postalCode: '69000',
    });
  });

  it('reads the national layout, and refuses a file without the key columns', () => {
    const map = columnMap(EXTRACTION_HEADER);
    expect(map.columns).toBe(31);
    const row = parseRow(extractionLine('a@b.example', 3), map);
    expect(row && entryFrom(row.address, row.values)).toMatchObject({
      type: 'PER',
      personId: '10000000003',
      nationalId: '810000000003',
      structureId: '1690000003',
      specialtyCode: 'SM54',
      dematerialisation: 'true',
      department: '69',
      country: 'FRANCE',
    });
    expect(refusedReason(() => columnMap('Nom|Prénom|Adresse'))).toBe('malformed');
    expect(refusedReason(() => columnMap('Type de BAL|Nom'))).toBe('malformed');
  });

  it('rejects lines with a wrong column count, address or type', () => {
    const map = columnMap(EXTRACTION_HEADER);
    const good = extractionLine('a@b.example', 1);
    expect(parseRow(good, map)).toBeDefined();
    expect(parseRow(`${good}|extra`, map)).toBeUndefined();
    expect(parseRow(good.slice(0, good.lastIndexOf('|')), map)).toBeUndefined();
    expect(parseRow('', map)).toBeUndefined();
    // The first and last cells are cut at the line's ends, each cell trimmed.
    const spaced = good.replace(/^PER\|/, ' per |').replace(/\|FRANCE$/, '| FRANCE ');
    expect(parseRow(spaced, map)?.values).toEqual(parseRow(good, map)?.values);
    expect(parseRow(good, map)?.values.at(-1)).toBe('FRANCE');
    expect(parseRow(good.replace('a@b.example', 'pas-une-adresse'), map)).toBeUndefined();
    expect(parseRow(good.replace(/^PER/, 'XYZ'), map)).toBeUndefined();
  });

  it('normalises addresses like the whitelist normalises domains', () => {
    expect(normalizeAddress(' Jean.Martin@Hôpital.Example ')).toBe('jean.martin@xn--hpital-ixa.example');
    expect(normalizeAddress('a@b')).toBeUndefined();
    expect(normalizeAddress('@b.example')).toBeUndefined();
    expect(normalizeAddress('a b@b.example')).toBeUndefined();
  });

  it('merges a repeated address: the first line wins, gaps are filled, conflicts are told', () => {
    const kept = ['PER', '', 'x', ''];
    expect(mergeValues(kept, ['PER', 'filled', 'y', ''])).toEqual({ conflict: true });
    expect(kept).toEqual(['PER', 'filled', 'x', '']);
    expect(mergeValues(kept, ['PER', '', '', 'z'])).toEqual({ conflict: false });
    expect(kept).toEqual(['PER', 'filled', 'x', 'z']);
  });

  it('stores entries compactly and reads them back', () => {
    const values = ['ORG', '', '', '', '4', '123', 'Service', ...Array<string>(14).fill('')];
    const stored = encodeValues(values);
    expect(stored).toBe('ORG||||4|123|Service');
    expect(decodeValues(stored)).toEqual(values);
  });
});

/** The lines ByteLines passes for these chunks, as text, and what end() passes. */
function splitLines(chunks: Buffer[], maxLineBytes = 100): { lines: string[]; last: string | undefined } {
  const splitter = new ByteLines(maxLineBytes);
  const lines: string[] = [];
  const sink = (b: Buffer, s: number, e: number) => lines.push(b.toString('utf8', s, e));
  for (const chunk of chunks) splitter.push(chunk, sink);
  const before = lines.length;
  const ended = splitter.end(sink);
  expect(ended).toBe(lines.length > before);
  return { lines: lines.slice(0, before), last: ended ? lines.at(-1) : undefined };
}

/** A ZIP of one file, deflated or stored as given. */
function zipOne(name: string, content: Buffer, compress: boolean): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  zip.addBuffer(content, name, { compress });
  zip.end();
  return buffer(zip.outputStream);
}

describe('reading the archive', () => {
  it('gives the text of a deflated or stored entry whose bytes span several pieces, and refuses a damaged one', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mssgw-extraction-zip-'));
    try {
      // Hex of random bytes: deflated to about half, so the compressed bytes span several 1 MiB pieces.
      const text = Buffer.from(`${EXTRACTION_HEADER}\n${randomBytes(1536 * 1024).toString('hex')}\n`);
      for (const compress of [true, false]) {
        const file = path.join(dir, `extraction-${compress}.zip`);
        const zip = await zipOne('Extraction_Correspondance_MSSante.txt', text, compress);
        await writeFile(file, zip);
        const opened = await openExtraction(file, () => {
          throw new Error('not a plain file');
        });
        expect({ zipped: opened.zipped, textBytes: opened.textBytes }).toEqual({
          zipped: true,
          textBytes: text.length,
        });
        expect((await buffer(opened.stream)).equals(text)).toBe(true);

        // Bytes damaged in the middle of the entry's data: the inflater or the CRC check fails the stream.
        const damaged = Buffer.from(zip);
        for (let i = zip.length >> 1; i < (zip.length >> 1) + 1000; i++) damaged[i] = damaged[i]! ^ 0x5a;
        const bad = path.join(dir, `damaged-${compress}.zip`);
        await writeFile(bad, damaged);
        const failure = await openExtraction(bad, () => {
          throw new Error('not a plain file');
        }).then(
          (o) =>
            buffer(o.stream).then(
              () => undefined,
              (err: unknown) => err,
            ),
          (err: unknown) => err,
        );
        expect(failure).toBeInstanceOf(GatewayError);
        expect((failure as GatewayError).details.reason).toBe('malformed');
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('line splitting', () => {
  it('splits LF and CRLF lines across chunk and UTF-8 boundaries, keeping an unterminated tail', () => {
    const bytes = Buffer.from('é1\r\nligne 2\nfin sans saut', 'utf8');
    const oneByOne = Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
    expect(splitLines(oneByOne)).toEqual({ lines: ['é1', 'ligne 2'], last: 'fin sans saut' });
    expect(splitLines([bytes])).toEqual({ lines: ['é1', 'ligne 2'], last: 'fin sans saut' });
    expect(splitLines([Buffer.from('a\nb\n')])).toEqual({ lines: ['a', 'b'], last: undefined });
    expect(splitLines([Buffer.from('a\r\n'), Buffer.from('\r')])).toEqual({ lines: ['a'], last: undefined });
  });

  it('passes a line that is not UTF-8 as decoding would have made it (U+FFFD for each bad byte)', () => {
    const bad = Buffer.concat([Buffer.from('PER|x'), Buffer.from([0xe9]), Buffer.from('|y\nok\n')]);
    expect(splitLines([bad]).lines).toEqual([`PER|x\uFFFD|y`, 'ok']);
    expect(splitLines([bad.subarray(0, 6), bad.subarray(6)]).lines).toEqual([`PER|x\uFFFD|y`, 'ok']);
  });

  it('refuses a line longer than the limit (a file without line breaks)', () => {
    const splitter = new ByteLines(10);
    expect(refusedReason(() => splitter.push(Buffer.from('x'.repeat(12)), () => undefined))).toBe(
      'malformed',
    );
    expect(
      refusedReason(() => new ByteLines(10).push(Buffer.from(`${'x'.repeat(11)}\n`), () => undefined)),
    ).toBe('malformed');
    expect(splitLines([Buffer.from(`${'x'.repeat(10)}\r\n`)], 10).lines).toEqual(['x'.repeat(10)]);
  });
});

/** What the byte reader makes of a line, as parseRow and encodeValues would have it. */
function readRow(reader: RowReader, line: string) {
  const bytes = Buffer.from(`##${line}##`, 'utf8');
  const outcome = reader.read(bytes, 2, bytes.length - 2);
  if (outcome !== 'ok') return outcome;
  return {
    address: reader.address,
    stored: reader.value.toString('utf8', 0, reader.valueLength),
    nationalId: reader.nationalId,
  };
}

describe('reading lines from their bytes', () => {
  it('stores what parseRow and encodeValues store, for plain and awkward lines alike', () => {
    const map = columnMap(EXTRACTION_HEADER);
    const reader = new RowReader(map, 4096);
    const good = extractionLine('a@b.example', 1);
    const variants = [
      good,
      extractionLine('Jean.Martin@Hôpital.Example', 2),
      extractionLine(' Upper.Case@CH-Exemple.MSSante.fr ', 3),
      extractionLine("o'brien@ch.example", 4),
      extractionLine('a@b.example.', 5),
      extractionLine('a..b@b.example', 6),
      extractionLine('a@b', 7),
      extractionLine(`${'x'.repeat(65)}@b.example`, 8),
      extractionLine('\u00a0nbsp@b.example\u00a0', 9),
      extractionLine('.lead@b.example', 10),
      extractionLine('trail.@b.example', 11),
      extractionLine('@b.example', 12),
      extractionLine('a@b@c.example', 13),
      extractionLine('a_b+c-d@sous_domaine.example', 14),
      extractionLine('a@-b.example', 15),
      extractionLine('a@b..example', 16),
      extractionLine('A.B_C+D@Domaine.Example', 17),
      extractionLine('pas-une-adresse', 18),
      extractionLine('', 19),
      good.replace(/^PER\|/, '|'),
      good.replace(/^PER\|/, '   |'),
      good.replace(/^PER\|/, ' per |').replace(/\|FRANCE$/, '| FRANCE '),
      good.replace(/^PER\|/, 'Org|'),
      good.replace(/^PER\|/, '\u00a0PER\u00a0|'),
      good.replace(/^PER\|/, 'XYZ|'),
      good.replace(/^PER\|/, 'PE|'),
      good.replace('|Cardiologie|', '|\u00a0Cardio\u00a0|'),
      good.replace('|Cardiologie|', '|  |'),
      good.replace(/\|[^|]*$/, '|'),
      good.replace(/\|810000000001\|/, '|8abc\u00e9|'),
      good.replace(/\|810000000001\|/, '||'),
      `${good}|extra`,
      good.slice(0, good.lastIndexOf('|')),
      '',
      '   ',
      '\u00a0',
    ];
    for (const line of variants) {
      const row = parseRow(line, map);
      const expected =
        line.trim() === ''
          ? 'blank'
          : row
            ? {
                address: row.address,
                stored: encodeValues(row.values),
                nationalId: row.values[ENTRY_FIELDS.indexOf('nationalId')]!.toUpperCase(),
              }
            : 'invalid';
      expect({ line, read: readRow(reader, line) }).toEqual({ line, read: expected });
    }
  });

  it('follows the columns of the header, wherever they are', () => {
    const map = columnMap('Adresse BAL|Identification nationale PP|Type de BAL|Raison sociale|Code postal');
    const reader = new RowReader(map, 4096);
    expect(readRow(reader, 'Jeanne.Dupont@CH-Exemple.mssante.fr|810000000001|per|CH EXEMPLE|69000')).toEqual({
      address: 'jeanne.dupont@ch-exemple.mssante.fr',
      stored: encodeValues(
        ENTRY_FIELDS.map(
          (f) =>
            ({ type: 'PER', nationalId: '810000000001', organisation: 'CH EXEMPLE', postalCode: '69000' })[
              f as string
            ] ?? '',
        ),
      ),
      nationalId: '810000000001',
    });
  });
});

describe('address digests', () => {
  it('remembers what was added, grows, and survives its byte form', () => {
    const set = new DigestSet(4);
    const d = { hi: 0, lo: 0 };
    for (let i = 0; i < 5000; i++) expect(set.add(digestOf(`user${i}@b.example`, d))).toBe(true);
    expect(set.add(digestOf('user42@b.example', d))).toBe(false);
    expect(set.size).toBe(5000);
    const copy = DigestSet.fromBuffer(set.toBuffer())!;
    expect(copy.size).toBe(5000);
    expect(copy.has(digestOf('user4999@b.example', d))).toBe(true);
    expect(copy.has(digestOf('user5000@b.example', d))).toBe(false);
    expect(DigestSet.fromBuffer(Buffer.alloc(7))).toBeUndefined();
  });
});

describe('shrink guard', () => {
  it('refuses a copy that lost more than the allowed share, unless told to accept it', () => {
    expect(() => checkShrink(undefined, 1, 0.1, false)).not.toThrow();
    expect(() => checkShrink(100, 90, 0.1, false)).not.toThrow();
    expect(refusedReason(() => checkShrink(100, 89, 0.1, false))).toBe('shrink');
    expect(() => checkShrink(100, 1, 0.1, true)).not.toThrow();
    expect(() => checkShrink(100, 0, 1, false)).not.toThrow();
  });
});
