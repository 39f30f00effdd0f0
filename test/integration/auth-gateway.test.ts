import { afterEach, describe, expect, inject, it } from 'vitest';
import type { AuthOutcome, AuthRequest, TlsFacts } from '../../src/auth/index.js';
import type { Config } from '../../src/config/index.js';
import { DEV_PERSON_NATIONAL_ID, normalizeDn, readDevPkiManifest } from '../../src/pki/index.js';
import type { Actor } from '../../src/registry/index.js';
import { uniqueAddress } from '../helpers/admin-harness.js';
import { startAuthHarness, type AuthHarness } from '../helpers/auth-harness.js';
import { handshakeFacts } from '../helpers/auth-tls.js';

const OWNER = DEV_PERSON_NATIONAL_ID;
const DELEGATE = '810000000002';
const STRUCTURE = '1750712184';
const ACTOR: Actor = { kind: 'cli', id: 'test' };
const TLS: TlsFacts = { secure: true, authorized: false };
const REMOTE = '198.51.100.7';

let harness: AuthHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

async function start(auth: Partial<Config['auth']> = {}): Promise<AuthHarness> {
  harness = await startAuthHarness(auth);
  return harness;
}

function request(fields: Partial<AuthRequest> & Pick<AuthRequest, 'mechanism' | 'bal'>): AuthRequest {
  return { channel: 'imap', tls: TLS, remote: REMOTE, ...fields };
}

function failure(outcome: AuthOutcome): { code: string; reason: string } {
  if (outcome.ok) throw new Error(`expected a refusal, got access to ${outcome.access.bal}`);
  return { code: outcome.code, reason: outcome.reason };
}

describe('mechanisms offered', () => {
  it('nothing before TLS; tokens after; EXTERNAL with a verified certificate; PLAIN/LOGIN where allowed', async () => {
    const pkiDir = inject('pkiDir');
    const h = await start();
    const app = await handshakeFacts(pkiDir, 'app-lab');
    const revoked = await handshakeFacts(pkiDir, 'peer-revoked');
    expect(h.authenticator.mechanisms({ secure: false, authorized: false })).toEqual([]);
    expect(h.authenticator.mechanisms(TLS)).toEqual(['XOAUTH2', 'OAUTHBEARER']);
    expect(h.authenticator.mechanisms(app)).toEqual(['XOAUTH2', 'OAUTHBEARER', 'EXTERNAL']);
    expect(h.authenticator.mechanisms(revoked)).toEqual(['XOAUTH2', 'OAUTHBEARER']);
    await h.close();
    harness = undefined;
    const withPasswords = await start({ passwordTypes: ['APP'] });
    expect(withPasswords.authenticator.mechanisms(TLS)).toEqual(['XOAUTH2', 'OAUTHBEARER', 'PLAIN', 'LOGIN']);
  });
});

describe('token authentication end to end', () => {
  it('opens a PER mailbox for its owner, journals the attempt, never the token', async () => {
    const h = await start();
    const bal = uniqueAddress('dr.dupont');
    await h.registry.create({ address: bal, type: 'PER', owner: OWNER }, ACTOR);
    const token = await h.issuer.token({ nationalId: OWNER });
    const outcome = await h.authenticator.authenticate(
      request({ mechanism: 'XOAUTH2', bal: bal.toUpperCase(), token }),
    );
    expect(outcome).toEqual({
      ok: true,
      access: {
        bal,
        right: 'owner',
        scopes: new Set(['read', 'send']),
        principal: { kind: 'person', nationalId: OWNER, via: 'psc-test' },
      },
    });
    expect(h.authEvents()).toEqual([
      expect.objectContaining({
        event: 'auth.succeeded',
        channel: 'imap',
        mechanism: 'XOAUTH2',
        bal,
        remote: REMOTE,
        principal: { kind: 'person', nationalId: OWNER, via: 'psc-test' },
        right: 'owner',
      }),
    ]);
    const signature = token.split('.')[2]!;
    expect(JSON.stringify(h.authEvents())).not.toContain(signature);
    expect(h.logs()).toContain('auth.succeeded');
    expect(h.logs()).not.toContain(signature);
  });

  it('refuses a person without rights (AUTH_NOT_AUTHORISED) with the token mechanism error', async () => {
    const h = await start();
    const bal = uniqueAddress('dr.dupont');
    await h.registry.create({ address: bal, type: 'PER', owner: OWNER }, ACTOR);
    const token = await h.issuer.token({ nationalId: DELEGATE });
    const xoauth2 = await h.authenticator.authenticate(request({ mechanism: 'XOAUTH2', bal, token }));
    expect(failure(xoauth2)).toEqual({ code: 'AUTH_NOT_AUTHORISED', reason: 'no_right' });
    expect(!xoauth2.ok && JSON.parse(xoauth2.saslError!)).toEqual({
      status: '403',
      schemes: 'bearer',
      scope: 'openid',
    });
    const bearer = await h.authenticator.authenticate(request({ mechanism: 'OAUTHBEARER', bal, token }));
    expect(!bearer.ok && JSON.parse(bearer.saslError!)).toEqual({
      status: 'insufficient_scope',
      scope: 'openid',
      'openid-configuration': `${h.issuer.issuer}/.well-known/openid-configuration`,
    });
    expect(h.authEvents().at(-1)).toMatchObject({
      event: 'auth.failed',
      bal,
      principal: { kind: 'person', nationalId: DELEGATE },
      code: 'AUTH_NOT_AUTHORISED',
      reason: 'no_right',
    });
  });

  it('opens a mailbox for a delegate with its scopes, journaling both identities', async () => {
    const h = await start();
    const bal = uniqueAddress('dr.dupont');
    await h.registry.create({ address: bal, type: 'PER', owner: OWNER }, ACTOR);
    await h.registry.grant(bal, { right: 'delegate', person: DELEGATE, scopes: ['read'] }, ACTOR);
    const token = await h.issuer.token({ nationalId: DELEGATE });
    const outcome = await h.authenticator.authenticate(
      request({ mechanism: 'OAUTHBEARER', bal, token, channel: 'submission' }),
    );
    expect(outcome).toMatchObject({
      ok: true,
      access: { bal, right: 'delegate', scopes: new Set(['read']) },
    });
    expect(h.authEvents().at(-1)).toMatchObject({
      event: 'auth.succeeded',
      channel: 'submission',
      principal: { kind: 'person', nationalId: DELEGATE },
      right: 'delegate',
      mailboxType: 'PER',
      mailboxOwner: OWNER,
    });
  });

  it('refuses a suspended mailbox to its owner, and an unknown one', async () => {
    const h = await start();
    const bal = uniqueAddress('dr.dupont');
    await h.registry.create({ address: bal, type: 'PER', owner: OWNER }, ACTOR);
    await h.registry.suspend(bal, ACTOR, 'unpaid');
    const token = await h.issuer.token({ nationalId: OWNER });
    expect(
      failure(await h.authenticator.authenticate(request({ mechanism: 'XOAUTH2', bal, token }))),
    ).toEqual({
      code: 'AUTH_MAILBOX_DISABLED',
      reason: 'mailbox_suspended',
    });
    const unknown = uniqueAddress('nobody');
    expect(
      failure(await h.authenticator.authenticate(request({ mechanism: 'XOAUTH2', bal: unknown, token }))),
    ).toEqual({ code: 'AUTH_NOT_AUTHORISED', reason: 'mailbox_unknown' });
  });

  it('refuses expired and invalid tokens, and anything before TLS', async () => {
    const h = await start();
    const bal = uniqueAddress('dr.dupont');
    await h.registry.create({ address: bal, type: 'PER', owner: OWNER }, ACTOR);
    const expired = await h.issuer.token({ nationalId: OWNER, expiresIn: -120 });
    const outcome = await h.authenticator.authenticate(
      request({ mechanism: 'OAUTHBEARER', bal, token: expired }),
    );
    expect(failure(outcome)).toEqual({ code: 'AUTH_TOKEN_EXPIRED', reason: 'token_expired' });
    expect(!outcome.ok && JSON.parse(outcome.saslError!)).toMatchObject({ status: 'invalid_token' });
    const forged = await h.issuer.token({
      nationalId: OWNER,
      key: await h.issuer.newKey('RS256', h.issuer.current().kid),
    });
    expect(
      failure(await h.authenticator.authenticate(request({ mechanism: 'XOAUTH2', bal, token: forged }))),
    ).toEqual({ code: 'AUTH_TOKEN_INVALID', reason: 'bad_signature' });
    const valid = await h.issuer.token({ nationalId: OWNER });
    const clear = await h.authenticator.authenticate(
      request({ mechanism: 'XOAUTH2', bal, token: valid, tls: { secure: false, authorized: false } }),
    );
    expect(failure(clear)).toEqual({ code: 'AUTH_TLS_REQUIRED', reason: 'tls_required' });
    expect(h.authEvents().map((e) => e.reason)).toEqual(['token_expired', 'bad_signature', 'tls_required']);
  });

  it('asks for the mailbox when a token names none and the person has several', async () => {
    const h = await start();
    const first = uniqueAddress('dr.dupont');
    await h.registry.create({ address: first, type: 'PER', owner: OWNER }, ACTOR);
    const token = await h.issuer.token({ nationalId: OWNER });
    const single = await h.authenticator.authenticate(
      request({ mechanism: 'OAUTHBEARER', bal: undefined, token }),
    );
    expect(single).toMatchObject({ ok: true, access: { bal: first, right: 'owner' } });
    await h.registry.create({ address: uniqueAddress('dr.dupont2'), type: 'PER', owner: OWNER }, ACTOR);
    const several = await h.authenticator.authenticate(
      request({ mechanism: 'OAUTHBEARER', bal: undefined, token }),
    );
    expect(failure(several)).toEqual({ code: 'AUTH_MAILBOX_REQUIRED', reason: 'several_mailboxes' });
  });
});

describe('failure limits in the authenticator', () => {
  it('refuses without checking credentials once a mailbox is locked; expired tokens do not count', async () => {
    const h = await start({ maxFailuresPerAddress: 3 });
    const bal = uniqueAddress('dr.dupont');
    await h.registry.create({ address: bal, type: 'PER', owner: OWNER }, ACTOR);
    const expired = await h.issuer.token({ nationalId: OWNER, expiresIn: -120 });
    for (let i = 0; i < 3; i++) {
      await h.authenticator.authenticate(request({ mechanism: 'XOAUTH2', bal, token: expired }));
    }
    expect(await h.authenticator.limiter.failures('token', 'source_mailbox', { bal, remote: REMOTE })).toBe(
      0,
    );
    const stranger = await h.issuer.token({ nationalId: DELEGATE });
    for (let i = 0; i < 3; i++) {
      await h.authenticator.authenticate(request({ mechanism: 'XOAUTH2', bal, token: stranger }));
    }
    // The third failure reached the limit: a lock of 1 s. More failures (as an attacker's tries
    // after each lock) make it 64 s, so that the check below cannot race its end.
    expect(await h.authenticator.limiter.failures('token', 'source_mailbox', { bal, remote: REMOTE })).toBe(
      3,
    );
    for (let i = 0; i < 6; i++)
      await h.authenticator.limiter.recordFailure({ bal, remote: REMOTE, kind: 'token' });
    const calls = h.verifyCalls();
    const good = await h.issuer.token({ nationalId: OWNER });
    const locked = await h.authenticator.authenticate(request({ mechanism: 'XOAUTH2', bal, token: good }));
    expect(failure(locked)).toEqual({ code: 'AUTH_RATE_LIMITED', reason: 'rate_limited' });
    expect(h.verifyCalls()).toBe(calls);
    expect(h.authEvents().at(-1)).toMatchObject({
      event: 'auth.failed',
      reason: 'rate_limited',
      limitScope: 'source_mailbox',
    });
  });

  it('a success resets the mailbox counter', async () => {
    const h = await start({ maxFailuresPerAddress: 3 });
    const bal = uniqueAddress('dr.dupont');
    await h.registry.create({ address: bal, type: 'PER', owner: OWNER }, ACTOR);
    const stranger = await h.issuer.token({ nationalId: DELEGATE });
    await h.authenticator.authenticate(request({ mechanism: 'XOAUTH2', bal, token: stranger }));
    await h.authenticator.authenticate(request({ mechanism: 'XOAUTH2', bal, token: stranger }));
    expect(await h.authenticator.limiter.failures('token', 'source_mailbox', { bal, remote: REMOTE })).toBe(
      2,
    );
    const good = await h.issuer.token({ nationalId: OWNER });
    expect((await h.authenticator.authenticate(request({ mechanism: 'XOAUTH2', bal, token: good }))).ok).toBe(
      true,
    );
    expect(await h.authenticator.limiter.failures('token', 'source_mailbox', { bal, remote: REMOTE })).toBe(
      0,
    );
    expect(await h.authenticator.limiter.failures('token', 'source', { remote: REMOTE })).toBe(2);
  });
});

describe('certificates (EXTERNAL) end to end', () => {
  it('opens the one APP mailbox an application certificate is bound to, without an authzid', async () => {
    const pkiDir = inject('pkiDir');
    const h = await start();
    const manifest = await readDevPkiManifest(pkiDir);
    const dn = manifest!.leaves['app-lab'].subject;
    const bal = uniqueAddress('labo');
    await h.registry.create({ address: bal, type: 'APP', owner: STRUCTURE }, ACTOR);
    await h.registry.grant(bal, { right: 'application', certificateDn: dn }, ACTOR);
    const tls = await handshakeFacts(pkiDir, 'app-lab');
    const outcome = await h.authenticator.authenticate(
      request({ mechanism: 'EXTERNAL', bal: undefined, tls }),
    );
    expect(outcome).toMatchObject({
      ok: true,
      access: { bal, right: 'application', principal: { kind: 'application', dn: normalizeDn(dn) } },
    });
    expect(h.authEvents().at(-1)).toMatchObject({
      event: 'auth.succeeded',
      mechanism: 'EXTERNAL',
      principal: { kind: 'application', dn: normalizeDn(dn) },
      mailboxType: 'APP',
      mailboxOwner: STRUCTURE,
    });
    if (!outcome.ok) return;
    await h.authenticator.recordActivity(outcome.access, 'imap');
    expect((await h.registry.activity(bal)).channels.application).toEqual(expect.any(String));

    const other = uniqueAddress('labo2');
    await h.registry.create({ address: other, type: 'APP', owner: STRUCTURE }, ACTOR);
    expect(
      failure(await h.authenticator.authenticate(request({ mechanism: 'EXTERNAL', bal: other, tls }))),
    ).toEqual({
      code: 'AUTH_NOT_AUTHORISED',
      reason: 'no_right',
    });
  });

  it('opens a PER mailbox for its owner proven by a CPS-like certificate', async () => {
    const pkiDir = inject('pkiDir');
    const h = await start();
    const bal = uniqueAddress('dr.dupont');
    await h.registry.create({ address: bal, type: 'PER', owner: OWNER }, ACTOR);
    const tls = await handshakeFacts(pkiDir, 'person-dupont');
    const outcome = await h.authenticator.authenticate(request({ mechanism: 'EXTERNAL', bal, tls }));
    expect(outcome).toMatchObject({
      ok: true,
      access: { bal, right: 'owner', principal: { kind: 'person', nationalId: OWNER, via: 'certificate' } },
    });
    expect(outcome.ok && outcome.access.principal).toMatchObject({
      dn: expect.stringContaining('SERIALNUMBER=') as unknown,
    });
  });

  it('asks for the authzid when a certificate opens no mailbox', async () => {
    const h = await start();
    const tls = await handshakeFacts(inject('pkiDir'), 'app-lab');
    expect(
      failure(await h.authenticator.authenticate(request({ mechanism: 'EXTERNAL', bal: undefined, tls }))),
    ).toEqual({ code: 'AUTH_MAILBOX_REQUIRED', reason: 'no_mailbox' });
  });
});

describe('operator-managed secrets (PLAIN, LOGIN)', () => {
  it('opens a mailbox of an allowed type with its secret, and only that', async () => {
    const h = await start({ passwordTypes: ['APP'] });
    const app = uniqueAddress('labo');
    const per = uniqueAddress('dr.dupont');
    await h.registry.create({ address: app, type: 'APP', owner: STRUCTURE }, ACTOR);
    await h.registry.create({ address: per, type: 'PER', owner: OWNER }, ACTOR);
    await h.secrets.set(app, 'a secret of the lab');
    await h.secrets.set(per, 'a secret of the doctor');
    const plain = (bal: string, authcid: string, password: string, mechanism: 'PLAIN' | 'LOGIN' = 'PLAIN') =>
      h.authenticator.authenticate(request({ mechanism, bal, authcid, password, channel: 'submission' }));

    expect(await plain(app, app, 'a secret of the lab', 'LOGIN')).toMatchObject({
      ok: true,
      access: { bal: app, right: 'owner', principal: { kind: 'secret', bal: app } },
    });
    expect(failure(await plain(app, app, 'wrong secret here'))).toEqual({
      code: 'AUTH_CREDENTIALS_INVALID',
      reason: 'bad_secret',
    });
    expect(failure(await plain(per, per, 'a secret of the doctor'))).toEqual({
      code: 'AUTH_MECHANISM_NOT_ALLOWED',
      reason: 'password_not_allowed',
    });
    // The lab's secret does not open another mailbox.
    const other = uniqueAddress('labo2');
    await h.registry.create({ address: other, type: 'APP', owner: STRUCTURE }, ACTOR);
    expect(failure(await plain(other, app, 'a secret of the lab'))).toEqual({
      code: 'AUTH_NOT_AUTHORISED',
      reason: 'no_right',
    });
    const text = JSON.stringify(h.authEvents()) + h.logs();
    expect(text).not.toContain('a secret of the');
    expect(text).not.toContain('wrong secret');
  });

  it('refuses PLAIN when no mailbox type allows it', async () => {
    const h = await start();
    const bal = uniqueAddress('labo');
    const outcome = await h.authenticator.authenticate(
      request({ mechanism: 'PLAIN', bal, authcid: bal, password: 'whatever it is' }),
    );
    expect(failure(outcome)).toEqual({ code: 'AUTH_MECHANISM_NOT_ALLOWED', reason: 'mechanism_not_offered' });
    expect(!outcome.ok && outcome.saslError).toBe(undefined);
  });
});
