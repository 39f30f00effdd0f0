import { describe, expect, it } from 'vitest';
import {
  AuthFailure,
  decodeExternal,
  decodeLoginField,
  decodeOauthbearer,
  decodePlain,
  decodeSaslBase64,
  decodeXoauth2,
  isOauthbearerErrorAck,
  oauthbearerErrorChallenge,
  saslErrorChallenge,
  xoauth2ErrorChallenge,
} from '../../src/auth/index.js';

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
const BAL = 'dr.martin@op.mssante.test';

/** Runs `fn` expecting AUTH_MALFORMED; returns its reason. */
function malformedReason(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AuthFailure);
    expect((err as AuthFailure).code).toBe('AUTH_MALFORMED');
    // The client's response may hold a secret: never echoed in the message.
    expect((err as AuthFailure).message).not.toContain(TOKEN);
    expect((err as AuthFailure).message).not.toContain('s3cret');
    return (err as AuthFailure).reason;
  }
  throw new Error('expected AUTH_MALFORMED');
}

describe('SASL base64', () => {
  it.each([
    ['=', ''],
    ['', ''],
    [b64('abc'), 'abc'],
    [`  ${b64('x')}  `, 'x'],
  ])('decodes %j', (text, decoded) => {
    expect(decodeSaslBase64(text).toString()).toBe(decoded);
  });

  it.each([
    ['not base64!', 'bad_base64'],
    ['YWJj ZGVm', 'bad_base64'],
    ['YWJ', 'bad_base64'],
    ['YW=j', 'bad_base64'],
    ['YWJj-_', 'bad_base64'],
    ['*', 'bad_base64'],
    ['A'.repeat(30_000), 'oversize'],
  ])('refuses %j (%s)', (text, reason) => {
    expect(malformedReason(() => decodeSaslBase64(text))).toBe(reason);
  });
});

describe('XOAUTH2 (user=BAL \\x01auth=Bearer TOKEN \\x01\\x01)', () => {
  it('decodes the mailbox and the token', () => {
    expect(decodeXoauth2(b64(`user=${BAL}\x01auth=Bearer ${TOKEN}\x01\x01`))).toEqual({
      bal: BAL,
      token: TOKEN,
    });
  });

  it('accepts the fields in any order and the scheme in any case (RFC 7235 §2.1)', () => {
    expect(decodeXoauth2(b64(`auth=bearer ${TOKEN}\x01user=${BAL}\x01\x01`))).toEqual({
      bal: BAL,
      token: TOKEN,
    });
  });

  it('reads an empty user= as no mailbox named', () => {
    expect(decodeXoauth2(b64(`user=\x01auth=Bearer ${TOKEN}\x01\x01`)).bal).toBeUndefined();
  });

  it.each([
    [`user=${BAL}\x01auth=Bearer ${TOKEN}\x01`, 'xoauth2_unterminated'],
    [`user=${BAL}\x01auth=Bearer ${TOKEN}`, 'xoauth2_unterminated'],
    [`auth=Bearer ${TOKEN}\x01\x01`, 'xoauth2_no_user'],
    [`user=${BAL}\x01\x01`, 'no_auth'],
    [`user=${BAL}\x01auth=Basic dXNlcjpwYXNz\x01\x01`, 'not_bearer'],
    [`user=${BAL}\x01auth=Bearer \x01\x01`, 'not_bearer'],
    [`user=${BAL}\x01auth=Bearer a b\x01\x01`, 'not_bearer'],
    [`user=${BAL}\x01user=${BAL}\x01auth=Bearer ${TOKEN}\x01\x01`, 'duplicate_field'],
    [`user=${BAL}\x01\x01auth=Bearer ${TOKEN}\x01\x01`, 'bad_field'],
    [`user=${BAL}\x01garbage\x01auth=Bearer ${TOKEN}\x01\x01`, 'bad_field'],
    [`user=dr martin@op.mssante.test\x01auth=Bearer ${TOKEN}\x01\x01`, 'bad_mailbox'],
    [`user=${'a'.repeat(300)}\x01auth=Bearer ${TOKEN}\x01\x01`, 'bad_mailbox'],
    ['\x01\x01', 'xoauth2_unterminated'],
  ])('refuses %j (%s)', (message, reason) => {
    expect(malformedReason(() => decodeXoauth2(b64(message)))).toBe(reason);
  });

  it('refuses invalid UTF-8', () => {
    const bytes = Buffer.concat([
      Buffer.from('user=\xff'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('\x01\x01'),
    ]);
    expect(malformedReason(() => decodeXoauth2(bytes.toString('base64')))).toBe('bad_utf8');
  });
});

describe('OAUTHBEARER (RFC 7628 §3.1)', () => {
  const message = (header: string, pairs: string) => b64(`${header}\x01${pairs}\x01`);

  it('decodes the GS2 authzid, the token, host and port', () => {
    expect(
      decodeOauthbearer(
        message(`n,a=${BAL},`, `host=imap.op.mssante.test\x01port=993\x01auth=Bearer ${TOKEN}\x01`),
      ),
    ).toEqual({
      bal: BAL,
      token: TOKEN,
      host: 'imap.op.mssante.test',
      port: 993,
    });
  });

  it('decodes saslname escapes (RFC 5801 §4) and a missing authzid', () => {
    expect(decodeOauthbearer(message('y,a=a=2Cb=3Dc@x.test,', `auth=Bearer ${TOKEN}\x01`)).bal).toBe(
      'a,b=c@x.test',
    );
    expect(decodeOauthbearer(message('n,,', `auth=Bearer ${TOKEN}\x01`))).toEqual({
      bal: undefined,
      token: TOKEN,
    });
  });

  it.each([
    [`n,a=${BAL},\x01auth=Bearer ${TOKEN}\x01`, 'oauthbearer_unterminated'],
    [`n,a=${BAL},auth=Bearer ${TOKEN}\x01\x01`, 'bad_gs2_header'],
    [`p=tls-unique,a=${BAL},\x01auth=Bearer ${TOKEN}\x01\x01`, 'channel_binding_unsupported'],
    [`x,a=${BAL},\x01auth=Bearer ${TOKEN}\x01\x01`, 'bad_gs2_header'],
    [`n,a=${BAL}\x01auth=Bearer ${TOKEN}\x01\x01`, 'bad_gs2_header'],
    [`n,a=a=2Xb@x.test,\x01auth=Bearer ${TOKEN}\x01\x01`, 'bad_authzid'],
    [`n,a=${BAL},\x01host=h\x01\x01`, 'no_auth'],
    [`n,a=${BAL},\x01auth=Bearer ${TOKEN}\x01auth=Bearer ${TOKEN}\x01\x01`, 'duplicate_field'],
    [`n,a=${BAL},\x01h0st=x\x01auth=Bearer ${TOKEN}\x01\x01`, 'bad_field'],
    [`n,a=${BAL},\x01port=99999\x01auth=Bearer ${TOKEN}\x01\x01`, 'bad_port'],
    [`n,a=${BAL},\x01host=a\x00b\x01auth=Bearer ${TOKEN}\x01\x01`, 'bad_field'],
    [`n,a=${BAL},`, 'bad_gs2_header'],
    ['\x01', 'bad_gs2_header'],
  ])('refuses %j (%s)', (text, reason) => {
    expect(malformedReason(() => decodeOauthbearer(b64(text)))).toBe(reason);
  });

  it('recognises the client dummy answer after an error (RFC 7628 §3.2.3)', () => {
    expect(isOauthbearerErrorAck('AQ==')).toBe(true);
    expect(isOauthbearerErrorAck('')).toBe(false);
    expect(isOauthbearerErrorAck('*')).toBe(false);
  });
});

describe('PLAIN (RFC 4616 §2)', () => {
  it.each([
    [`${BAL}\0${BAL}\0s3cret pass`, { authzid: BAL, authcid: BAL, password: 's3cret pass' }],
    [`\0${BAL}\0s3cret`, { authzid: undefined, authcid: BAL, password: 's3cret' }],
    [`\0${BAL}\0mot de passe é`, { authzid: undefined, authcid: BAL, password: 'mot de passe é' }],
  ])('decodes %j', (message, decoded) => {
    expect(decodePlain(b64(message))).toEqual(decoded);
  });

  it.each([
    [`${BAL}\0s3cret`, 'plain_fields'],
    [`${BAL}`, 'plain_fields'],
    [`a\0${BAL}\0s3c\0ret`, 'plain_fields'],
    [`\0\0s3cret`, 'plain_no_authcid'],
    [`\0${BAL}\0`, 'plain_no_password'],
    [`\0${'a'.repeat(256)}\0s3cret`, 'oversize'],
    [`\0${BAL}\0${'p'.repeat(1025)}`, 'oversize'],
  ])('refuses %j (%s)', (message, reason) => {
    expect(malformedReason(() => decodePlain(b64(message)))).toBe(reason);
  });

  it('refuses invalid UTF-8 in the password', () => {
    const bytes = Buffer.concat([Buffer.from(`\0${BAL}\0`), Buffer.from([0xff, 0xfe])]);
    expect(malformedReason(() => decodePlain(bytes.toString('base64')))).toBe('bad_utf8');
  });
});

describe('LOGIN and EXTERNAL', () => {
  it('decodes LOGIN answers', () => {
    expect(decodeLoginField(b64(BAL), 'username')).toBe(BAL);
    expect(decodeLoginField(b64('s3cret'), 'password')).toBe('s3cret');
    expect(malformedReason(() => decodeLoginField('=', 'username'))).toBe('login_field');
    expect(malformedReason(() => decodeLoginField(b64('a\0b'), 'password'))).toBe('login_field');
  });

  it.each([
    ['=', undefined],
    ['', undefined],
    [b64(BAL), BAL],
  ])('EXTERNAL %j → authzid %j (RFC 4422 Appendix A)', (text, authzid) => {
    expect(decodeExternal(text)).toEqual({ authzid });
  });

  it('refuses an EXTERNAL authzid with a NUL or too long', () => {
    expect(malformedReason(() => decodeExternal(b64(`${BAL}\0x`)))).toBe('external_nul');
    expect(malformedReason(() => decodeExternal(b64('a'.repeat(300))))).toBe('oversize');
  });
});

describe('error challenges', () => {
  it('XOAUTH2 in the style of Google: status, schemes, scope', () => {
    expect(JSON.parse(xoauth2ErrorChallenge('AUTH_TOKEN_INVALID'))).toEqual({
      status: '401',
      schemes: 'bearer',
      scope: 'openid',
    });
    expect(JSON.parse(xoauth2ErrorChallenge('AUTH_NOT_AUTHORISED'))).toMatchObject({ status: '403' });
  });

  it.each([
    ['AUTH_TOKEN_EXPIRED', 'invalid_token'],
    ['AUTH_TOKEN_INVALID', 'invalid_token'],
    ['AUTH_ISSUER_UNAVAILABLE', 'invalid_token'],
    ['AUTH_NOT_AUTHORISED', 'insufficient_scope'],
    ['AUTH_MAILBOX_DISABLED', 'insufficient_scope'],
    ['AUTH_MALFORMED', 'invalid_request'],
    ['AUTH_MAILBOX_REQUIRED', 'invalid_request'],
  ] as const)('OAUTHBEARER %s → status %s (RFC 7628 §3.2.2)', (code, status) => {
    expect(JSON.parse(oauthbearerErrorChallenge(code))).toEqual({ status, scope: 'openid' });
  });

  it('OAUTHBEARER names the discovery document when known', () => {
    const url = 'https://issuer.test/realms/esante-wallet/.well-known/openid-configuration';
    expect(JSON.parse(oauthbearerErrorChallenge('AUTH_TOKEN_INVALID', url))).toEqual({
      status: 'invalid_token',
      scope: 'openid',
      'openid-configuration': url,
    });
  });

  it('only the token mechanisms have one', () => {
    expect(saslErrorChallenge('PLAIN', 'AUTH_CREDENTIALS_INVALID')).toBeUndefined();
    expect(saslErrorChallenge('EXTERNAL', 'CERT_REVOKED')).toBeUndefined();
    expect(saslErrorChallenge('XOAUTH2', 'AUTH_TOKEN_EXPIRED')).toContain('"401"');
    expect(saslErrorChallenge('OAUTHBEARER', 'AUTH_TOKEN_EXPIRED')).toContain('invalid_token');
  });
});
