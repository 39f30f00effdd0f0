import { describe, expect, it } from 'vitest';
import {
  columnMap,
  decodeValues,
  encodeValues,
  entryFrom,
  headerKey,
  mergeValues,
  parseRow,
} from '../../src/directory/extraction-format.js';
import { LineSplitter } from '../../src/directory/extraction-input.js';
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

describe('line splitting', () => {
  it('splits LF and CRLF lines across chunk and UTF-8 boundaries, keeping an unterminated tail', () => {
    const splitter = new LineSplitter(100);
    const bytes = Buffer.from('é1\r\nligne 2\nfin sans saut', 'utf8');
    const lines: string[] = [];
    for (let i = 0; i < bytes.length; i += 1) lines.push(...splitter.push(bytes.subarray(i, i + 1)));
    expect(lines).toEqual(['é1', 'ligne 2']);
    expect(splitter.end()).toBe('fin sans saut');
    const whole = new LineSplitter(100);
    expect(whole.push(Buffer.from('a\nb\n'))).toEqual(['a', 'b']);
    expect(whole.end()).toBeUndefined();
  });

  it('refuses a line longer than the limit (a file without line breaks)', () => {
    const splitter = new LineSplitter(10);
    expect(refusedReason(() => splitter.push(Buffer.from('x'.repeat(11))))).toBe('malformed');
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
