import type { Bal, BalType } from '../../src/registry/index.js';

/** Fixed people, structures and dates for the pure rights tests. */
export const NOW = new Date('2026-03-01T12:00:00.000Z');
export const OWNER = '810001234567';
export const DELEGATE = '810009876543';
export const ADELI = '02A1234567';
export const FINESS = '1750712184';
export const APP_DN = 'CN=lps.hopital.test,OU=Informatique,O=Hopital Exemple,C=FR';
export const APP_DN_OTHER_SPELLING = 'c=FR;  o=Hopital  Exemple ; ou = Informatique;cn=lps.hopital.test';

/** An active mailbox of the given type: PER owned by OWNER, others by the FINESS structure. */
export function bal(type: BalType, extra: Partial<Bal> = {}): Bal {
  return {
    address: `${type.toLowerCase()}@op.mssante.test`,
    type,
    owner: type === 'PER' ? OWNER : FINESS,
    status: 'active',
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    ...extra,
  };
}
