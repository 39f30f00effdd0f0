import { describe, expect, it } from 'vitest';
import type { Access } from '../../src/auth/types.js';
import {
  checkEnvelopeSender,
  checkHeaderSenders,
  isValidIns,
  routeSubmission,
} from '../../src/routing/index.js';

const ours = new Set(['op.mssante.test']);
const whitelist = { dnsOf: (d: string) => new Set(d === 'peer.mssante.test' ? ['C=FR,CN=mx'] : []) };

describe('submission recipient routing', () => {
  it.each([
    ['dr.house@op.mssante.test', { kind: 'lookup', address: 'dr.house@op.mssante.test' }],
    ['someone@peer.mssante.test', { kind: 'relay', address: 'someone@peer.mssante.test', patient: false }],
    [
      '185057800608491@patient.mssante.fr',
      { kind: 'relay', address: '185057800608491@patient.mssante.fr', patient: true },
    ],
    [
      '299017512345649@PATIENT.mssante.fr',
      { kind: 'relay', address: '299017512345649@patient.mssante.fr', patient: true },
    ],
    [
      '185057800608492@patient.mssante.fr',
      { kind: 'refuse', code: 'PATIENT_ADDRESS_INVALID', reason: 'bad_patient_address' },
    ],
    [
      '18505780060849@patient.mssante.fr',
      { kind: 'refuse', code: 'PATIENT_ADDRESS_INVALID', reason: 'bad_patient_address' },
    ],
    [
      'jean.dupont@patient.mssante.fr',
      { kind: 'refuse', code: 'PATIENT_ADDRESS_INVALID', reason: 'bad_patient_address' },
    ],
    [
      'someone@gmail.com',
      { kind: 'refuse', code: 'RECIPIENT_OUTSIDE_TRUST_SPACE', reason: 'outside_trust_space' },
    ],
    ['not an address', { kind: 'refuse', code: 'BAD_ADDRESS_SYNTAX', reason: 'bad_address' }],
  ])('%s', (address, expected) => {
    expect(routeSubmission(address, ours, whitelist)).toEqual(expected);
  });

  it('checks the INS key (97 - NIR mod 97)', () => {
    expect(isValidIns('185057800608491')).toBe(true);
    expect(isValidIns('285057800608491')).toBe(false);
    expect(isValidIns('385057800608491')).toBe(false); // first digit is the sex: 1 or 2
  });
});

function access(right: Access['right'], scopes: Array<'read' | 'send'>): Access {
  return {
    bal: 'dr.house@op.mssante.test',
    right,
    scopes: new Set(scopes),
    principal: { kind: 'person', nationalId: '810000000099', via: 'development' },
  };
}

describe('sender policy', () => {
  it.each([
    [access('owner', ['read', 'send']), 'dr.house@op.mssante.test', { ok: true }],
    [access('owner', ['read', 'send']), 'DR.House@op.mssante.test', { ok: true }],
    [access('owner', ['read', 'send']), '', { ok: true }],
    [
      access('owner', ['read', 'send']),
      'other@op.mssante.test',
      { ok: false, code: 'SENDER_NOT_ALLOWED', reason: 'envelope_sender' },
    ],
    [
      access('delegate', ['read']),
      'dr.house@op.mssante.test',
      { ok: false, code: 'SEND_NOT_AUTHORISED', reason: 'read_only' },
    ],
  ])('envelope sender %#', (a, from, expected) => {
    expect(checkEnvelopeSender(a, from)).toEqual(expected);
  });

  const secretary = ['secretariat.house@op.mssante.test'];
  it.each([
    [
      'owner, From = mailbox',
      access('owner', ['send']),
      { from: ['dr.house@op.mssante.test'], sender: undefined },
      [],
      { ok: true },
    ],
    [
      'owner, From another',
      access('owner', ['send']),
      { from: ['x@op.mssante.test'], sender: undefined },
      [],
      { ok: false, code: 'FROM_NOT_ALLOWED', reason: 'from_header' },
    ],
    [
      'owner, two From',
      access('owner', ['send']),
      { from: ['dr.house@op.mssante.test', 'x@op.mssante.test'], sender: undefined },
      [],
      { ok: false, code: 'FROM_NOT_ALLOWED', reason: 'from_header' },
    ],
    [
      'owner, no From',
      access('owner', ['send']),
      { from: [], sender: undefined },
      [],
      { ok: false, code: 'FROM_NOT_ALLOWED', reason: 'from_header' },
    ],
    [
      'delegate, Sender added',
      access('delegate', ['send']),
      { from: ['dr.house@op.mssante.test'], sender: undefined },
      secretary,
      { ok: true, addSender: secretary[0] },
    ],
    [
      'delegate, Sender given',
      access('delegate', ['send']),
      { from: ['dr.house@op.mssante.test'], sender: secretary },
      secretary,
      { ok: true },
    ],
    [
      'delegate, Sender not hers',
      access('delegate', ['send']),
      { from: ['dr.house@op.mssante.test'], sender: ['x@op.mssante.test'] },
      secretary,
      { ok: false, code: 'FROM_NOT_ALLOWED', reason: 'sender_header' },
    ],
    [
      'delegate, From herself',
      access('delegate', ['send']),
      { from: secretary, sender: undefined },
      secretary,
      { ok: false, code: 'FROM_NOT_ALLOWED', reason: 'from_header' },
    ],
    [
      'delegate without any MSSanté address: no Sender, her national id in X-MSSGW-Delegate',
      access('delegate', ['send']),
      { from: ['dr.house@op.mssante.test'], sender: undefined },
      [],
      { ok: true, addDelegate: '810000000099' },
    ],
    [
      'delegate without any MSSanté address naming a Sender',
      access('delegate', ['send']),
      { from: ['dr.house@op.mssante.test'], sender: ['dr.house@op.mssante.test'] },
      [],
      { ok: false, code: 'FROM_NOT_ALLOWED', reason: 'sender_header' },
    ],
  ])('%s', (_name, a, headers, own, expected) => {
    expect(checkHeaderSenders(a, headers, own)).toEqual(expected);
  });
});
