import { describe, expect, it } from 'vitest';
import { routeByDomain, routeLocal } from '../../src/routing/index.js';
import { smtpError, smtpReplyFor } from '../../src/smtp/index.js';
import { presentedDn } from '../../src/pki/index.js';
import { receivedHeader } from '../../src/smtp/received-header.js';

const ours = new Set(['op.mssante.test']);
const trust = { dnsOf: (d: string) => new Set(d === 'peer.mssante.test' ? ['C=FR,CN=mx.peer'] : []) };

describe('MX recipient routing', () => {
  it.each([
    ['dr.house@op.mssante.test', { kind: 'lookup', address: 'dr.house@op.mssante.test' }],
    ['Dr.House@OP.mssante.test', { kind: 'lookup', address: 'dr.house@op.mssante.test' }],
    ['someone@peer.mssante.test', { kind: 'refuse', code: 'RELAY_NOT_OFFERED', reason: 'relay_not_offered' }],
    [
      '185057800608491@patient.mssante.fr',
      { kind: 'refuse', code: 'RELAY_NOT_OFFERED', reason: 'relay_not_offered' },
    ],
    ['someone@gmail.com', { kind: 'refuse', code: 'RELAY_DENIED', reason: 'relay_denied' }],
    ['no-at-sign', { kind: 'refuse', code: 'BAD_ADDRESS_SYNTAX', reason: 'bad_address' }],
    ['a b@op.mssante.test', { kind: 'refuse', code: 'BAD_ADDRESS_SYNTAX', reason: 'bad_address' }],
  ])('%s', (address, expected) => {
    expect(routeByDomain(address, ours, trust)).toEqual(expected);
  });

  it.each([
    [null, 'RECIPIENT_UNKNOWN'],
    [{ status: 'deleted' as const }, 'RECIPIENT_UNKNOWN'],
    [{ status: 'suspended' as const }, 'RECIPIENT_SUSPENDED'],
  ])('refuses %j with %s', (bal, code) => {
    expect(routeLocal('a@op.mssante.test', bal)).toMatchObject({ kind: 'refuse', code });
  });

  it('delivers to an active mailbox', () => {
    expect(routeLocal('a@op.mssante.test', { status: 'active' })).toEqual({
      kind: 'local',
      address: 'a@op.mssante.test',
    });
  });
});

describe('SMTP replies', () => {
  it('gives each trust refusal its own reply and enhanced code', () => {
    const codes = [
      'TLS_REQUIRED',
      'CERT_MISSING',
      'CERT_UNTRUSTED',
      'CERT_EXPIRED',
      'CERT_REVOKED',
      'OPERATOR_NOT_WHITELISTED',
      'SENDER_DOMAIN_NOT_AUTHORISED',
    ] as const;
    const pairs = codes.map((c) => `${smtpReplyFor(c).code} ${smtpReplyFor(c).enhanced}`);
    expect(new Set(pairs).size).toBe(codes.length);
    expect(pairs[0]).toBe('530 5.7.0');
    for (const c of codes) expect(smtpReplyFor(c).text).toMatch(/^[\x20-\x7e]+$/); // RFC 5321 §4.2: US-ASCII
    const err = smtpError('MESSAGE_TOO_LARGE');
    expect(err.responseCode).toBe(552);
    expect(err.message).toMatch(/^5\.3\.4 /);
  });

  it('keeps the peer DN as presented, its parentheses quoted in the comment (RFC 5322 §3.2.2)', () => {
    const subject = {
      C: 'FR',
      ST: 'Rhone (69)',
      O: 'Hôpital, Lyon',
      OU: '123456789',
      CN: 'mx.peer.mssante.test',
    };
    const dn = presentedDn(subject);
    expect(dn).toBe('CN=mx.peer.mssante.test,OU=123456789,O=Hôpital\\, Lyon,ST=Rhone (69),C=FR');
    const h = receivedHeader({
      helo: 'mx.peer.mssante.test',
      remoteAddress: '127.0.0.1',
      hostname: 'mx.op.mssante.test',
      protocol: 'ESMTPS',
      peerDn: dn,
      id: 'abc',
      date: new Date('2026-11-24T10:00:00Z'),
    });
    expect(h).toContain(
      '\r\n\t(peer certificate CN=mx.peer.mssante.test,OU=123456789,O=Hôpital\\\\, Lyon,ST=Rhone \\(69\\),C=FR)\r\n',
    );
  });

  it('writes a Received header that client values cannot break out of', () => {
    const h = receivedHeader({
      helo: 'evil\r\nX-Injected: 1',
      remoteAddress: '127.0.0.1',
      hostname: 'mx.op.mssante.test',
      protocol: 'ESMTPS',
      tlsProtocol: 'TLSv1.3',
      tlsCipher: 'TLS_AES_256_GCM_SHA384',
      peerDn: 'C=FR,CN=mx.peer.mssante.test',
      id: 'abc',
      recipient: 'a@op.mssante.test',
      date: new Date('2026-11-24T10:00:00Z'),
    });
    expect(h).not.toMatch(/\r\nX-Injected/);
    expect(h).toMatch(
      /^Received: from evil {2}X-Injected: 1 \(\[127\.0\.0\.1\]\)\r\n\t\(using TLSv1\.3 with cipher TLS_AES_256_GCM_SHA384\)/,
    );
    expect(h).toMatch(
      /by mx\.op\.mssante\.test \(mssgw\) with ESMTPS id abc\r\n\tfor <a@op\.mssante\.test>;\r\n\tTue, 24 Nov 2026 10:00:00 \+0000\r\n$/,
    );
  });
});
