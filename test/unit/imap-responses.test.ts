import { describe, expect, it } from 'vitest';
import type { TlsFacts } from '../../src/auth/index.js';
import { ERROR_CODES, type ErrorCode } from '../../src/errors/index.js';
import { preauthCapabilities, preauthMechanisms } from '../../src/imap/capabilities.js';
import { imapFailureFor } from '../../src/imap/index.js';
import { failureLine, taggedLine } from '../../src/imap/responses.js';
import {
  type SaslIo,
  offeredMechanism,
  runSaslExchange,
  sendSaslError,
} from '../../src/imap/sasl-exchange.js';
import { parseStoreLine } from '../../src/imap/store-login.js';

describe('error code → IMAP response (RFC 5530)', () => {
  it.each<[ErrorCode, string]>([
    ['AUTH_TLS_REQUIRED', 'a NO [PRIVACYREQUIRED] Use STARTTLS or the TLS port first'],
    ['AUTH_TOKEN_INVALID', 'a NO [AUTHENTICATIONFAILED] Access token not valid'],
    ['AUTH_CREDENTIALS_INVALID', 'a NO [AUTHENTICATIONFAILED] Authentication failed'],
    ['AUTH_TOKEN_EXPIRED', 'a NO [EXPIRED] Access token expired, get a new one'],
    ['CERT_EXPIRED', 'a NO [EXPIRED] Client certificate outside its validity period'],
    ['CERT_REVOKED', 'a NO [AUTHENTICATIONFAILED] Client certificate revoked'],
    ['AUTH_NOT_AUTHORISED', 'a NO [AUTHORIZATIONFAILED] This identity may not open this mailbox'],
    [
      'AUTH_MAILBOX_REQUIRED',
      'a NO [AUTHORIZATIONFAILED] Name the mailbox to open (SASL authorization identity)',
    ],
    ['AUTH_MAILBOX_DISABLED', 'a NO [CONTACTADMIN] Mailbox suspended, contact your operator'],
    ['AUTH_RATE_LIMITED', 'a NO [UNAVAILABLE] Too many failed attempts, try again later'],
    ['AUTH_ISSUER_UNAVAILABLE', 'a NO [UNAVAILABLE] Token issuer unavailable, try again later'],
    ['REGISTRY_UNAVAILABLE', 'a NO [UNAVAILABLE] Mailbox directory unavailable, try again later'],
    ['STORE_UNAVAILABLE', 'a NO [UNAVAILABLE] Mailbox store unavailable, try again later'],
    ['AUTH_MECHANISM_NOT_ALLOWED', 'a NO [CANNOT] This authentication mechanism is not allowed here'],
    ['AUTH_MALFORMED', 'a BAD Malformed SASL response'],
    ['INTERNAL', 'a NO [UNAVAILABLE] Internal error, try again later'],
  ])('%s', (code, line) => {
    expect(failureLine('a', code)).toBe(`${line}\r\n`);
  });

  it('answers every code of the catalogue, temporary ones with UNAVAILABLE, in ASCII', () => {
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      const failure = imapFailureFor(code);
      expect(failure.text).toMatch(/^[\x20-\x7e]+$/);
      if (ERROR_CODES[code].temporary && ERROR_CODES[code].side !== 'client') {
        expect(failure.code, code).toBe('UNAVAILABLE');
      }
    }
  });

  it('formats tagged lines (RFC 9051 §7.1)', () => {
    expect(taggedLine('a1', 'OK', 'Logged in', 'CAPABILITY IMAP4rev1 IDLE')).toBe(
      'a1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n',
    );
    expect(taggedLine('*', 'BYE', 'Logging out')).toBe('* BYE Logging out\r\n');
  });
});

describe('pre-authentication capabilities', () => {
  const plain: TlsFacts = { secure: false, authorized: false };
  const secure: TlsFacts = { secure: true, authorized: false };
  const all = ['XOAUTH2', 'OAUTHBEARER', 'PLAIN', 'LOGIN'] as const;

  it('before TLS: STARTTLS and LOGINDISABLED, no mechanism (MSSANTE.md: TLS, then SASL)', () => {
    expect(preauthCapabilities(plain, preauthMechanisms(plain, all))).toBe(
      'IMAP4rev1 SASL-IR ID LITERAL+ STARTTLS LOGINDISABLED',
    );
  });

  it('after TLS: the authenticator’s mechanisms; LOGIN only with PLAIN or LOGIN', () => {
    expect(preauthCapabilities(secure, preauthMechanisms(secure, all))).toBe(
      'IMAP4rev1 SASL-IR ID LITERAL+ AUTH=XOAUTH2 AUTH=OAUTHBEARER AUTH=PLAIN AUTH=LOGIN',
    );
    expect(preauthCapabilities(secure, ['XOAUTH2', 'OAUTHBEARER'])).toBe(
      'IMAP4rev1 SASL-IR ID LITERAL+ LOGINDISABLED AUTH=XOAUTH2 AUTH=OAUTHBEARER',
    );
  });

  it('accepts only offered mechanisms, by case-insensitive name', () => {
    expect(offeredMechanism('xoauth2', ['XOAUTH2'])).toBe('XOAUTH2');
    expect(offeredMechanism('EXTERNAL', ['XOAUTH2'])).toBeUndefined();
    expect(offeredMechanism('CRAM-MD5', ['XOAUTH2'])).toBeUndefined();
  });
});

/** A scripted client for the SASL steps: its answers in order, and the challenges it saw. */
function scripted(answers: Array<string | undefined>): SaslIo & { challenges: string[] } {
  const challenges: string[] = [];
  return {
    challenges,
    challenge: (text) => challenges.push(text),
    response: () => Promise.resolve(answers.shift()),
  };
}

const context = { tls: { secure: true, authorized: false }, remote: '192.0.2.1' };
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

describe('AUTHENTICATE exchange (RFC 9051 §6.2.2, RFC 4959)', () => {
  it('takes an XOAUTH2 initial response: the mailbox from user=, the token', async () => {
    const io = scripted([]);
    const result = await runSaslExchange(
      'XOAUTH2',
      b64('user=a@x.test\x01auth=Bearer tok.en\x01\x01'),
      io,
      context,
    );
    expect(io.challenges).toEqual([]);
    expect(result).toMatchObject({
      kind: 'request',
      request: { mechanism: 'XOAUTH2', bal: 'a@x.test', token: 'tok.en', channel: 'imap' },
    });
  });

  it('asks with an empty challenge when there is no initial response', async () => {
    const io = scripted([b64('n,a=a@x.test,\x01auth=Bearer t\x01\x01')]);
    const result = await runSaslExchange('OAUTHBEARER', undefined, io, context);
    expect(io.challenges).toEqual(['']);
    expect(result).toMatchObject({ kind: 'request', request: { bal: 'a@x.test', token: 't' } });
  });

  it('PLAIN: the authzid is the mailbox, else the authcid', async () => {
    const withAuthzid = await runSaslExchange('PLAIN', b64('box@x\0me@x\0pw'), scripted([]), context);
    expect(withAuthzid).toMatchObject({ request: { bal: 'box@x', authcid: 'me@x', password: 'pw' } });
    const without = await runSaslExchange('PLAIN', b64('\0me@x\0pw'), scripted([]), context);
    expect(without).toMatchObject({ request: { bal: 'me@x', authcid: 'me@x' } });
  });

  it('EXTERNAL: `=` is no authorization identity', async () => {
    expect(await runSaslExchange('EXTERNAL', '=', scripted([]), context)).toMatchObject({
      kind: 'request',
      request: { mechanism: 'EXTERNAL', bal: undefined },
    });
  });

  it('LOGIN: two challenges, user name then password', async () => {
    const io = scripted([b64('me@x'), b64('secret')]);
    const result = await runSaslExchange('LOGIN', undefined, io, context);
    expect(io.challenges).toEqual(['VXNlcm5hbWU6', 'UGFzc3dvcmQ6']);
    expect(result).toMatchObject({
      request: { mechanism: 'LOGIN', bal: 'me@x', authcid: 'me@x', password: 'secret' },
    });
  });

  it.each<[string, string | undefined, Array<string | undefined>, string]>([
    ['cancel with *', undefined, ['*'], 'cancelled'],
    ['cancel LOGIN at the password', undefined, [b64('me@x'), '*'], 'cancelled'],
    ['connection gone', undefined, [undefined], 'closed'],
    ['not base64', 'not*base64', [], 'malformed'],
    ['XOAUTH2 without user=', b64('auth=Bearer t\x01\x01'), [], 'malformed'],
  ])('%s', async (_name, initial, answers, kind) => {
    const mechanism = answers[0] === b64('me@x') ? 'LOGIN' : 'XOAUTH2';
    expect(await runSaslExchange(mechanism, initial, scripted(answers), context)).toMatchObject({ kind });
  });

  it('sends the error challenge as base64 JSON and waits for the client (RFC 7628 §3.2.3)', async () => {
    const io = scripted(['']);
    expect(await sendSaslError('{"status":"401"}', io)).toBe('answered');
    expect(io.challenges).toEqual([b64('{"status":"401"}')]);
    expect(await sendSaslError('{}', scripted(['*']))).toBe('cancelled');
    expect(await sendSaslError('{}', scripted([undefined]))).toBe('closed');
  });
});

describe('store response lines', () => {
  it.each<[string, object]>([
    [
      '* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] Dovecot ready.',
      { tag: '*', kind: 'OK', capability: 'IMAP4rev1 SASL-IR AUTH=PLAIN' },
    ],
    ['G1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in', { tag: 'G1', kind: 'OK', capability: 'IMAP4rev1 IDLE' }],
    ['G1 NO [AUTHENTICATIONFAILED] Authentication failed.', { tag: 'G1', kind: 'NO' }],
    ['* CAPABILITY IMAP4rev1 IDLE', { tag: '*', kind: 'CAPABILITY', text: 'IMAP4rev1 IDLE' }],
    ['+ ', { tag: '+', kind: '' }],
  ])('%s', (line, expected) => {
    expect(parseStoreLine(line)).toMatchObject(expected);
  });
});
