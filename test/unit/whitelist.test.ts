import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Whitelist, WhitelistHolder, parseWhitelistXml } from '../../src/directory/index.js';
import { GatewayError } from '../../src/errors/index.js';
import { attributesFromSubject, canonicalDn, normalizeDn } from '../../src/pki/index.js';

const sample = readFileSync(new URL('../fixtures/whitelist-sample.xml', import.meta.url));
const MX1 = normalizeDn('CN=mx1.op-alpha.example,OU=318000000000001,O=Operateur Alpha,ST=Rhone (69),C=FR');
const MX2 = normalizeDn('CN=mx2.op-alpha.example,OU=318000000000001,O=Operateur Alpha,ST=Rhone (69),C=FR');
const BETA = normalizeDn('CN=smtp.op-beta.example,OU=1000000001,O=Operateur Beta,ST=Gironde (33),C=FR');

function wrap(domaines: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><ListeBlancheMSSante xmlns="https://listeblanche.mssante.fr/schema"><DateDeGeneration>2026-11-20T03:00:00Z</DateDeGeneration><ListeDomaines>${domaines}</ListeDomaines></ListeBlancheMSSante>`;
}

function invalid(xml: string): string {
  try {
    parseWhitelistXml(xml);
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('WHITELIST_INVALID');
    return (err as GatewayError).message;
  }
  throw new Error('expected the whitelist to be refused');
}

describe('whitelist', () => {
  it('indexes a domain with several DNs and a DN with several domains', () => {
    const parsed = parseWhitelistXml(sample);
    expect(parsed.generatedAt).toBe('2026-11-20T03:00:00Z');
    expect(parsed.entries).toHaveLength(4);
    const w = new Whitelist(parsed, 'sample', new Date());
    expect([...w.dnsOf('ch-exemple.mssante.fr')].sort()).toEqual([MX1, MX2].sort());
    expect([...w.domainsOf(MX1)].sort()).toEqual(['ch-exemple.mssante.fr', 'labo-exemple.mssante.fr']);
    expect([...w.domainsOf(MX2)]).toEqual(['ch-exemple.mssante.fr']);
    expect(w.allows(BETA, 'MEDECIN.op-beta.example')).toBe(true);
    expect(w.allows(BETA, 'ch-exemple.mssante.fr')).toBe(false);
    expect(w.domainCount).toBe(3);
    expect(w.operatorCount).toBe(3);
  });

  it('refuses a DOCTYPE, entities, processing instructions and anything outside the national schema', () => {
    const good = wrap(
      '<Domaine><Nom>a.example</Nom><DNCertificatOperateur>CN=mx.a.example,O=A,C=FR</DNCertificatOperateur></Domaine>',
    );
    expect(parseWhitelistXml(good).entries).toHaveLength(1);
    const bomb = good.replace(
      '<ListeBlancheMSSante',
      '<!DOCTYPE ListeBlancheMSSante [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><ListeBlancheMSSante',
    );
    expect(invalid(bomb)).toBe('whitelist carries a DOCTYPE (DTD), which the national schema excludes');
    expect(
      invalid(
        good.replace('<ListeBlancheMSSante', '<!DOCTYPE x SYSTEM "file:///etc/passwd"><ListeBlancheMSSante'),
      ),
    ).toMatch(/DOCTYPE/);
    expect(invalid(good.replace('<ListeDomaines>', '<?xml-stylesheet href="x"?><ListeDomaines>'))).toMatch(
      /processing instruction/,
    );
    expect(invalid(good.replace('<Nom>', '<Autre>x</Autre><Nom>'))).toBe(
      'Domaine #1 holds element Autre, which the national schema does not define (1 of 1 Domaine entries malformed, over directory.whitelist.maxInvalidShare 0)',
    );
    expect(invalid(good.replace('<ListeDomaines>', '<ListeDomaines><Extra/>'))).toMatch(
      /ListeDomaines holds element Extra/,
    );
    expect(invalid(good.replace('<DateDeGeneration>', '<Version>2</Version><DateDeGeneration>'))).toMatch(
      /ListeBlancheMSSante holds element Version/,
    );
    expect(invalid(good.replace('<Nom>a.example</Nom>', '<Nom><b>a.example</b></Nom>'))).toMatch(
      /Nom must be text/,
    );
    expect(invalid(good.replace('<ListeDomaines>', '<ListeDomaines id="1">'))).toMatch(/attribute id/);
  });

  it('refuses malformed and incomplete files, saying where', () => {
    expect(invalid('<ListeBlancheMSSante><oops></ListeBlancheMSSante>')).toMatch(/well-formed/);
    expect(invalid('<Autre/>')).toMatch(/ListeBlancheMSSante/);
    expect(invalid(wrap(''))).toMatch(/no Domaine/);
    expect(invalid(wrap('<Domaine><Nom>a.example</Nom></Domaine>'))).toMatch(
      /Domaine #1 \(a.example\): DNCertificatOperateur is missing/,
    );
    expect(
      invalid(
        wrap('<Domaine><Nom>not a domain</Nom><DNCertificatOperateur>CN=x</DNCertificatOperateur></Domaine>'),
      ),
    ).toMatch(/Domaine #1: Nom/);
    const truncated = sample.toString('utf8').slice(0, 900);
    expect(invalid(truncated)).toMatch(/well-formed/);
  });

  it('leaves malformed entries out and keeps the rest, up to the allowed share of bad entries', () => {
    const entry = (domain: string, dn = `CN=mx.${domain},O=Op,C=FR`) =>
      `<Domaine><Nom>${domain}</Nom><DNCertificatOperateur>${dn}</DNCertificatOperateur></Domaine>`;
    const good = Array.from({ length: 18 }, (_, i) => entry(`d${i}.example`));
    const bad = [
      entry('not a domain'),
      '<Domaine><Nom>nodn.example</Nom></Domaine>',
      entry('baddn.example', 'no equals sign'),
      '<Domaine><Nom>extra.example</Nom><Autre>x</Autre></Domaine>',
    ];
    // 2 bad of 20: 10 %.
    const twoBad = wrap([...good.slice(0, 9), bad[0], ...good.slice(9), bad[1]].join(''));
    const parsed = parseWhitelistXml(twoBad, 0.1);
    expect(parsed.entries.map((e) => e.domain)).toEqual(
      Array.from({ length: 18 }, (_, i) => `d${i}.example`),
    );
    expect(parsed.rejected).toEqual([
      { position: 10, problem: 'Domaine #10: Nom "not a domain" is not a domain' },
      {
        position: 20,
        domain: 'nodn.example',
        problem: 'Domaine #20 (nodn.example): DNCertificatOperateur is missing',
      },
    ]);
    const w = new Whitelist(parsed, 't', new Date());
    expect([w.size, w.rejected.length, w.dnsOf('d17.example').size]).toEqual([18, 2, 1]);
    // Above the share: refused, naming the setting and every problem (the first five).
    expect(() => parseWhitelistXml(twoBad, 0.05)).toThrow(
      'Domaine #10: Nom "not a domain" is not a domain; Domaine #20 (nodn.example): DNCertificatOperateur is missing (2 of 20 Domaine entries malformed, over directory.whitelist.maxInvalidShare 0.05)',
    );
    const fourBad = parseWhitelistXml(wrap([...good, ...bad].join('')), 0.2);
    expect(fourBad.rejected.map((r) => r.problem)).toEqual([
      'Domaine #19: Nom "not a domain" is not a domain',
      'Domaine #20 (nodn.example): DNCertificatOperateur is missing',
      'Domaine #21 (baddn.example): DNCertificatOperateur is not a DN: attribute without \'=\' in DN: "no equals sign"',
      'Domaine #22 holds element Autre, which the national schema does not define',
    ]);
    // A file of bad entries only is never a whitelist, whatever the share allowed.
    expect(() => parseWhitelistXml(wrap(bad.join('')), 1)).toThrow(/4 of 4 Domaine entries malformed/);
  });

  it('matches a DN spelled with combining accents (NFD) to its precomposed twin (NFC)', () => {
    const nfc = 'CN=mx.hôpital.example,O=Hôpital Édouard Hérriot,L=Lyon,C=FR';
    const nfd = nfc.normalize('NFD');
    expect(nfd).not.toBe(nfc);
    const w = new Whitelist(
      parseWhitelistXml(
        wrap(
          `<Domaine><Nom>hopital.example</Nom><DNCertificatOperateur>${nfd}</DNCertificatOperateur></Domaine>`,
        ),
      ),
      't',
      new Date(),
    );
    // The peer certificate's subject as Node gives it, precomposed.
    const peer = canonicalDn(
      attributesFromSubject({ CN: 'mx.hôpital.example', O: 'Hôpital Édouard Hérriot', L: 'Lyon', C: 'FR' }),
    );
    expect(w.allows(peer, 'hopital.example')).toBe(true);
    // And the other way round: an NFD certificate against an NFC whitelist entry.
    expect(normalizeDn(nfd)).toBe(normalizeDn(nfc));
    expect(canonicalDn(attributesFromSubject({ O: 'Hôpital'.normalize('NFD') }))).toBe('O=Hôpital');
  });

  it('normalises IDN domains to ASCII', () => {
    const w = new Whitelist(
      parseWhitelistXml(
        wrap(
          '<Domaine><Nom>Hôpital.example</Nom><DNCertificatOperateur>CN=x,C=FR</DNCertificatOperateur></Domaine>',
        ),
      ),
      't',
      new Date(),
    );
    expect(w.allows(normalizeDn('C=FR,CN=x'), 'xn--hpital-ixa.example')).toBe(true);
  });

  it('swaps copies in one step', () => {
    const a = new Whitelist(parseWhitelistXml(sample), 'a', new Date());
    const b = new Whitelist(
      parseWhitelistXml(
        wrap(
          '<Domaine><Nom>b.example</Nom><DNCertificatOperateur>CN=b,C=FR</DNCertificatOperateur></Domaine>',
        ),
      ),
      'b',
      new Date(),
    );
    const holder = new WhitelistHolder(a);
    expect(holder.swap(b)).toBe(a);
    expect(holder.current().source).toBe('b');
  });
});
