import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { GatewayAuthenticator, JwtTokenVerifier, type AuthRequest } from '../../src/auth/index.js';
import { systemClock } from '../../src/shared/index.js';
import { ConfigSchema } from '../../src/config/index.js';
import {
  DAY_MS,
  IndicatorRecorder,
  LifecycleActivity,
  LifecyclePlanner,
  LifecycleRunner,
} from '../../src/lifecycle/index.js';
import { MemoryAuditJournal, createLogger } from '../../src/observability/index.js';
import { DEV_PERSON_NATIONAL_ID } from '../../src/pki/index.js';
import { ActivityStore, BalRegistry } from '../../src/registry/index.js';
import { TEST_DOMAINS, storeProvisioner, uniqueAddress } from '../helpers/admin-harness.js';
import { startTestIssuer, type TestIssuer } from '../helpers/auth-issuer.js';
import { devTrust } from '../helpers/auth-tls.js';
import { ACTOR, LmtpWarnings } from '../helpers/lifecycle-fixture.js';
import { RecordingDirectory, TestClock } from '../helpers/lifecycle.js';

const OWNER = DEV_PERSON_NATIONAL_ID;
const DELEGATE = '810000000002';
const THRESHOLDS = { inactivityDays: 45, warningLeadDays: 15 };

let issuer: TestIssuer | undefined;
let redis: Redis | undefined;
afterEach(async () => {
  await issuer?.close();
  redis?.disconnect();
  issuer = undefined;
  redis = undefined;
});

describe('return of a mailbox unpublished for inactivity', () => {
  it("a delegate's login counts for the delegator's mailbox: republished at once, its period starts again", async () => {
    redis = new Redis(inject('redisUrl'));
    issuer = await startTestIssuer();
    const prefix = `test:${randomUUID()}:`;
    // The mailbox's life so far happened in the past; the login happens now, on the system clock.
    const clock = new TestClock(new Date(Date.now() - 50 * DAY_MS));
    const journal = new MemoryAuditJournal();
    const logger = createLogger({ level: 'silent' });
    const registry = new BalRegistry({
      redis,
      prefix,
      domains: TEST_DOMAINS,
      clock,
      journal,
      provisioner: storeProvisioner(),
    });
    const auth = ConfigSchema.parse({}).auth;
    const authenticator = new GatewayAuthenticator({
      config: { ...auth, mode: 'production' },
      registry,
      redis,
      prefix,
      authorities: () => devTrust(inject('pkiDir')).authorities,
      journal,
      logger,
      clock: systemClock,
      verifier: new JwtTokenVerifier({
        issuers: [
          {
            name: 'psc-test',
            issuer: issuer.issuer,
            jwksUrl: issuer.jwksUrl,
            nationalIdClaim: 'SubjectNameID',
            development: false,
          },
        ],
        clockSkewSeconds: auth.clockSkewSeconds,
        jwksCacheSeconds: auth.jwksCacheSeconds,
        mode: 'development',
        clock: systemClock,
      }),
    });
    const directory = new RecordingDirectory({ redis, prefix, clock });
    const activity = ActivityStore.withPrefix(redis, prefix);
    const runner = new LifecycleRunner({
      redis,
      prefix,
      config: { ...THRESHOLDS, timeZone: 'Europe/Paris', deletedMailRetentionDays: 90 },
      registry,
      activity,
      publication: directory,
      publisher: directory,
      warnings: new LmtpWarnings(),
      clock,
      journal,
      logger,
    });
    const hook = new LifecycleActivity({
      redis,
      prefix,
      indicators: new IndicatorRecorder({
        redis,
        prefix,
        timeZone: 'Europe/Paris',
        retentionDays: 430,
        maxSoftwarePerDay: 20,
      }),
      publisher: directory,
      journal,
      logger,
    });

    const bal = uniqueAddress('dr.dupont');
    await registry.create({ address: bal, type: 'PER', owner: OWNER }, ACTOR);
    await registry.grant(bal, { right: 'delegate', person: DELEGATE, scopes: ['read'] }, ACTOR);
    await directory.set(bal, 'published', clock.now());
    const created = clock.now().getTime();
    clock.set(created + 31 * DAY_MS);
    expect((await runner.runOnce()).outcomes).toEqual({ warned: 1 });
    clock.set(created + 46 * DAY_MS);
    expect((await runner.runOnce()).outcomes).toEqual({ unpublished: 1 });
    expect(await directory.stateOf(bal)).toBe('unpublished-inactive');

    // Now: the secretary (a delegate) opens the doctor's mailbox, as the IMAP front end does.
    const request: AuthRequest = {
      mechanism: 'XOAUTH2',
      bal,
      token: await issuer.token({ nationalId: DELEGATE }),
      channel: 'imap',
      tls: { secure: true, authorized: false },
      remote: '198.51.100.9',
    };
    const outcome = await authenticator.authenticate(request);
    if (!outcome.ok) throw new Error(`delegate login refused: ${outcome.code}`);
    expect(outcome.access).toMatchObject({ bal, right: 'delegate' });
    await authenticator.recordActivity(outcome.access, 'imap');
    const [usedAt] = await activity.lastActivityOf([bal]);
    expect(usedAt).toBeGreaterThan(created + 46 * DAY_MS);
    clock.set(usedAt ?? 0);

    expect(await hook.onActivity(outcome.access.bal, 'imap', clock.now())).toBe('republished');
    expect((await directory.calls()).map((c) => `${c.op} ${c.address}`)).toEqual([
      `unpublishInactive ${bal}`,
      `republish ${bal}`,
    ]);
    expect(await directory.stateOf(bal)).toBe('published');
    expect(journal.events.filter((e) => e.event === 'lifecycle.republished')).toMatchObject([
      { address: bal, channel: 'imap', directoryResponse: '200 OK: telecom inserted' },
    ]);

    // From now on the mailbox counts from the delegate's login: a new period, a new warning.
    const planner = new LifecyclePlanner({
      redis,
      prefix,
      thresholds: THRESHOLDS,
      registry,
      activity,
      publication: directory,
    });
    const later = await planner.one(bal, (usedAt ?? 0) + 29 * DAY_MS);
    expect(later?.decision).toMatchObject({ action: 'none', reason: 'recently-used', idleDays: 29 });
    const warned = await planner.one(bal, (usedAt ?? 0) + 30 * DAY_MS);
    expect(warned?.decision).toMatchObject({
      action: 'warn',
      evidence: { basis: 'activity', lastActivityAt: new Date(usedAt ?? 0).toISOString() },
    });
  });
});
