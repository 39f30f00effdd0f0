import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { crlIssuer, parseCrl } from '../../src/directory/index.js';
import { DER, readDer, timeOf } from '../../src/directory/der.js';
import { GatewayError } from '../../src/errors/index.js';
import { devCrl } from '../helpers/national-data.js';

function authorities(pkiDir: string): X509Certificate[] {
  return ['root', 'org', 'pp'].map(
    (n) => new X509Certificate(readFileSync(path.join(pkiDir, 'ca', `${n}.crt`))),
  );
}

function refusal(fn: () => unknown): { reason: unknown; message: string } {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('MIRROR_COPY_REFUSED');
    return { reason: (err as GatewayError).details.reason, message: (err as Error).message };
  }
  throw new Error('expected a refusal');
}

describe('CRL checks', () => {
  it('reads the dates and entries of the development CRLs, DER or PEM, and finds their signer', () => {
    const pkiDir = inject('pkiDir');
    const cas = authorities(pkiDir);
    const der = readFileSync(path.join(pkiDir, 'ca', 'org.crl.der'));
    const pem = readFileSync(path.join(pkiDir, 'ca', 'org.crl'));
    const fromDer = parseCrl(der);
    const fromPem = parseCrl(pem);
    expect(fromPem.der.equals(fromDer.der)).toBe(true);
    expect(fromDer.revokedCount).toBe(1); // peer-revoked
    expect(fromDer.signatureAlgorithm).toBe('1.2.840.113549.1.1.11');
    expect(fromDer.nextUpdate!.getTime()).toBeGreaterThan(fromDer.thisUpdate.getTime());
    expect(crlIssuer(fromDer, cas).subject).toMatch(/ORGANISATIONS/);
    expect(crlIssuer(parseCrl(readFileSync(path.join(pkiDir, 'ca', 'root.crl'))), cas).subject).toMatch(
      /RACINE/,
    );
    expect(parseCrl(readFileSync(path.join(pkiDir, 'ca', 'root.crl'))).revokedCount).toBe(0);
  });

  it('refuses a CRL signed with another key, by an authority not configured, or not a CRL at all', async () => {
    const pkiDir = inject('pkiDir');
    const cas = authorities(pkiDir);
    const forged = parseCrl(await devCrl(pkiDir, 'org', { forged: true }));
    expect(refusal(() => crlIssuer(forged, cas)).reason).toBe('bad_signature');
    const foreign = parseCrl(await devCrl(pkiDir, 'foreign-root'));
    expect(refusal(() => crlIssuer(foreign, cas)).reason).toBe('wrong_issuer');
    // The organisations CRL checked against the people authority only: not its issuer.
    const org = parseCrl(await devCrl(pkiDir, 'org'));
    expect(refusal(() => crlIssuer(org, cas.slice(2))).reason).toBe('wrong_issuer');

    const good = await devCrl(pkiDir, 'org');
    expect(refusal(() => parseCrl(Buffer.from('garbage'))).reason).toBe('malformed');
    expect(refusal(() => parseCrl(good.subarray(0, good.length - 10))).message).toMatch(/truncated/);
    // One flipped bit in the signed part: still parses, no longer verifies.
    const tampered = Buffer.from(good);
    const tbs = parseCrl(good).tbs;
    const last = good.indexOf(tbs) + tbs.length - 1; // the cRLNumber value, end of the TBS
    tampered[last] = tampered[last]! ^ 0x01;
    expect(refusal(() => crlIssuer(parseCrl(tampered), cas)).reason).toBe('bad_signature');
  });

  it('reads UTCTime and GeneralizedTime (RFC 5280 §5.1.2.4)', () => {
    const time = (tag: number, text: string) =>
      timeOf(readDer(Buffer.concat([Buffer.from([tag, text.length]), Buffer.from(text, 'latin1')])));
    expect(time(DER.UTC_TIME, '491231235959Z').toISOString()).toBe('2049-12-31T23:59:59.000Z');
    expect(time(DER.UTC_TIME, '500101000000Z').toISOString()).toBe('1950-01-01T00:00:00.000Z');
    expect(time(DER.GENERALIZED_TIME, '20510101120000Z').toISOString()).toBe('2051-01-01T12:00:00.000Z');
  });
});
