import { describe, expect, it } from 'vitest';
import { attributesFromSubject, canonicalDn, normalizeDn, parseDn } from '../../src/pki/index.js';

describe('DN normalisation', () => {
  it.each([
    [
      'CN=mx1.op-alpha.example,OU=318000000000001,O=Operateur Alpha,ST=Rhone (69),C=FR',
      'C=FR, ST=Rhone (69), O=Operateur Alpha, OU=318000000000001, CN=mx1.op-alpha.example',
    ],
    ['cn=a.example , o = Op  Alpha,c=FR', 'C=FR,O=Op Alpha,CN=a.example'],
    ['CN=a.example;O=Op Alpha;C=FR', 'CN=a.example,O=Op Alpha,C=FR'],
    ['S=Gironde (33),CN=x,C=FR', 'ST=Gironde (33),CN=x,C=FR'],
    ['2.5.4.3=x,2.5.4.6=FR', 'CN=x,C=FR'],
    ['CN=Dupont\\, Jeanne,C=FR', 'CN="Dupont, Jeanne",C=FR'],
    ['CN=R\\C3\\A9gion,C=FR', 'CN=Région,C=FR'],
  ])('%s equals %s', (a, b) => {
    expect(normalizeDn(a)).toBe(normalizeDn(b));
  });

  it.each([
    ['CN=mx1.example,C=FR', 'CN=MX1.example,C=FR'],
    ['CN=a,O=X,C=FR', 'CN=a,O=X,OU=1,C=FR'],
    ['CN=a,C=FR', 'CN=b,C=FR'],
  ])('%s differs from %s (values compare exactly)', (a, b) => {
    expect(normalizeDn(a)).not.toBe(normalizeDn(b));
  });

  it('reads multi-valued RDNs and escaped separators', () => {
    expect(parseDn('CN=810000000001+SN=DUPONT,C=FR')).toEqual([
      { type: 'CN', value: '810000000001' },
      { type: 'SN', value: 'DUPONT' },
      { type: 'C', value: 'FR' },
    ]);
    expect(canonicalDn(parseDn('CN=a\\+b,C=FR'))).toBe('C=FR,CN=a\\+b');
  });

  it("matches Node's certificate subject object whatever the order", () => {
    const fromCert = attributesFromSubject({
      C: 'FR',
      ST: 'Rhone (69)',
      O: 'Operateur Alpha',
      OU: '318000000000001',
      CN: 'mx1.op-alpha.example',
    });
    expect(canonicalDn(fromCert)).toBe(
      normalizeDn('CN=mx1.op-alpha.example,OU=318000000000001,O=Operateur Alpha,ST=Rhone (69),C=FR'),
    );
    expect(canonicalDn(attributesFromSubject({ OU: ['b', 'a'], CN: 'x' }))).toBe('CN=x,OU=a,OU=b');
  });

  it('rejects what is not a DN', () => {
    expect(() => parseDn('')).toThrow(SyntaxError);
    expect(() => parseDn('just text')).toThrow(SyntaxError);
  });
});
