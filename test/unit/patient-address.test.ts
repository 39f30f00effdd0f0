import { describe, expect, it } from 'vitest';
import { isValidIns } from '../../src/routing/index.js';

/**
 * INS = NIR (13 characters) + key, key = 97 − (NIR mod 97), the Corsican departments 2A and 2B
 * read as 19 and 18 for the key (MSSANTE.md "Mailboxes"). Keys below computed by hand:
 * 1850578006084 mod 97 = 6 → 91; 1850519004006 mod 97 = 21 → 76; 2851218123045 mod 97 = 49 → 48.
 */
describe('patient address (INS)', () => {
  it.each([
    ['mainland', '185057800608491', true],
    ['mainland, other key', '185057800608492', false],
    ['Corse-du-Sud (2A read 19)', '185052A00400676', true],
    ['Corse-du-Sud, lower-cased as addresses reach us', '185052a00400676', true],
    ['Corse-du-Sud, key computed as if 2A read 20', '185052A00400649', false],
    ['Haute-Corse (2B read 18)', '285122B12304548', true],
    ['Haute-Corse, key computed as if 2B read 19 (the 2A rule)', '285122B12304521', false],
    ['Haute-Corse number with the Corse-du-Sud key', '185052B00400676', false],
    ['no such department 2C', '185052C00400676', false],
    ['letter outside the department', '1850578006A8491', false],
    ['sex digit 3', '385057800608491', false],
    ['14 characters', '18505780060849', false],
    ['16 characters', '1850578006084910', false],
    ['empty', '', false],
    ['key 00 never valid', '185057800608400', false],
  ])('%s: %s → %s', (_case, ins, valid) => {
    expect(isValidIns(ins)).toBe(valid);
  });
});
