import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { normalizeDn } from '../../src/pki/index.js';
import { metricValue, startMirrors, uniquePrefix, useNationalServer } from '../helpers/directory-harness.js';
import { whitelistXml } from '../helpers/national-data.js';
import { NationalServer } from '../helpers/national-server.js';

const NEW_DOMAIN = 'nouveau.mssante.test';
const NEW_DN = 'CN=mx.nouveau.test,OU=318000000000099,O=Operateur Nouveau,C=FR';
const withNew = (count: number) => whitelistXml(count, { extra: [{ domain: NEW_DOMAIN, dn: NEW_DN }] });

const { server, track, untrack } = useNationalServer();

async function mirrorsFor(path: string, extra: { prefix?: string; timeoutSeconds?: number } = {}) {
  return track(
    startMirrors({
      directory: {
        whitelist: { source: server().url(path) },
        ...(extra.timeoutSeconds ? { fetch: { timeoutSeconds: extra.timeoutSeconds } } : {}),
      },
      ...(extra.prefix ? { prefix: extra.prefix } : {}),
    }),
  );
}

describe('whitelist mirror', () => {
  it('accepts a good copy over HTTPS with our certificate, then recognises it unchanged', async () => {
    server().serve('/good.xml', withNew(100));
    const h = await mirrorsFor('/good.xml');
    expect(h.holder.current().dnsOf(NEW_DOMAIN).size).toBe(0);

    const r = await h.mirrors.refresh('whitelist');
    expect(r).toMatchObject({
      mirror: 'whitelist',
      outcome: 'accepted',
      reason: 'ok',
      version: 1,
      entries: 101,
    });
    expect([...h.holder.current().dnsOf(NEW_DOMAIN)]).toEqual([normalizeDn(NEW_DN)]);
    expect(h.holder.current().source).toContain('/good.xml');
    // Our gateway certificate (CN=localhost in the development PKI) was presented to the source.
    expect(server().requestsFor('/good.xml').at(-1)?.clientCn).toBe('localhost');
    expect(h.events('directory.mirror.accepted')).toEqual([
      expect.objectContaining({
        mirror: 'whitelist',
        version: 1,
        entries: 101,
        source: server().url('/good.xml'),
      }),
    ]);
    expect(
      await metricValue(h.metrics, 'mssgw_mirror_refresh_total', {
        mirror: 'whitelist',
        outcome: 'accepted',
        reason: 'ok',
      }),
    ).toBe(1);
    expect(await metricValue(h.metrics, 'mssgw_mirror_entries', { mirror: 'whitelist' })).toBe(101);
    expect(await metricValue(h.metrics, 'mssgw_mirror_age_seconds', { mirror: 'whitelist' })).toBeLessThan(
      60,
    );

    expect(await h.mirrors.refresh('whitelist')).toMatchObject({
      outcome: 'unchanged',
      reason: 'same_content',
      version: 1,
    });
    const [status] = await h.mirrors.status();
    expect(status).toMatchObject({
      mirror: 'whitelist',
      version: 1,
      entries: 101,
      lastOutcome: 'unchanged',
      configuredSource: server().url('/good.xml'),
    });
    expect(status?.lastError).toBeUndefined();
  });

  it('refuses malformed, truncated and abnormally shrunk copies, keeping the last good one', async () => {
    server().serve('/refused.xml', withNew(100));
    const h = await mirrorsFor('/refused.xml');
    expect((await h.mirrors.refresh('whitelist')).outcome).toBe('accepted');
    const inService = h.holder.current();

    server().serve('/refused.xml', '<ListeBlancheMSSante><oops></ListeBlancheMSSante>');
    expect(await h.mirrors.refresh('whitelist')).toMatchObject({
      outcome: 'refused',
      reason: 'malformed',
      version: 1,
      error: expect.stringMatching(/well-formed/) as unknown,
    });
    const full = withNew(100);
    server().serve('/refused.xml', full.slice(0, Math.floor(full.length * 0.6)));
    expect(await h.mirrors.refresh('whitelist')).toMatchObject({ outcome: 'refused', reason: 'malformed' });
    // A DTD with entity definitions: refused before any parser expands it; nothing of it is stored.
    const dtd = '<!DOCTYPE ListeBlancheMSSante [<!ENTITY op "Operateur Nouveau">]>';
    server().serve('/refused.xml', full.replace(/(<\?xml[^>]*\?>)?/, `$1${dtd}`));
    expect(await h.mirrors.refresh('whitelist')).toMatchObject({
      outcome: 'refused',
      reason: 'malformed',
      error: 'whitelist carries a DOCTYPE (DTD), which the national schema excludes',
    });
    const stored = await h.redis.keys(`${h.config.redis.prefix}dir:{dir:whitelist}:v:*`);
    for (const key of stored)
      expect((await h.redis.getBuffer(key))?.toString('utf8')).not.toContain('ENTITY');
    server().serve('/refused.xml', withNew(80));
    expect(await h.mirrors.refresh('whitelist')).toMatchObject({
      outcome: 'refused',
      reason: 'shrink',
      error: expect.stringMatching(/81 entries against 101/) as unknown,
    });

    expect(h.holder.current()).toBe(inService);
    const [status] = await h.mirrors.status();
    expect(status).toMatchObject({ version: 1, entries: 101, lastOutcome: 'refused', lastReason: 'shrink' });
    expect(status?.lastError).toMatch(/81 entries/);
    expect(h.events('directory.mirror.refused').map((e) => e.reason)).toEqual([
      'malformed',
      'malformed',
      'malformed',
      'shrink',
    ]);
    expect(
      await metricValue(h.metrics, 'mssgw_mirror_refresh_total', {
        mirror: 'whitelist',
        outcome: 'refused',
        reason: 'malformed',
      }),
    ).toBe(3);

    // An operator who knows the shrink is real accepts it explicitly.
    expect(await h.mirrors.refresh('whitelist', { acceptShrink: true })).toMatchObject({
      outcome: 'accepted',
      entries: 81,
      added: 0,
      removed: 20,
    });
    expect(h.holder.current().dnsOf('d90.mssante.example').size).toBe(0);
    expect(h.holder.current().dnsOf(NEW_DOMAIN).size).toBe(1);
  });

  it('keeps the valid entries of a copy with a few malformed ones, reporting each bad entry', async () => {
    const bad = [
      { domain: 'not a domain', dn: 'CN=mx.bad,O=Bad,C=FR' },
      { domain: 'nodn.mssante.test', dn: 'no equals sign' },
    ];
    // 2 bad of 102: under the default share (directory.whitelist.maxInvalidShare 0.05).
    server().serve(
      '/partial.xml',
      whitelistXml(100, { extra: [bad[0]!, { domain: NEW_DOMAIN, dn: NEW_DN }, bad[1]!] }),
    );
    const h = await mirrorsFor('/partial.xml');
    expect(await h.mirrors.refresh('whitelist')).toMatchObject({ outcome: 'accepted', entries: 101 });
    expect([...h.holder.current().dnsOf(NEW_DOMAIN)]).toEqual([normalizeDn(NEW_DN)]);
    const problems = [
      'Domaine #1: Nom "not a domain" is not a domain',
      'Domaine #3 (nodn.mssante.test): DNCertificatOperateur is not a DN: attribute without \'=\' in DN: "no equals sign"',
    ];
    expect(h.holder.current().rejected.map((r) => r.problem)).toEqual(problems);
    expect(h.events('directory.mirror.accepted')).toEqual([
      expect.objectContaining({ mirror: 'whitelist', entries: 101, rejected: 2, rejectedEntries: problems }),
    ]);
    const [status] = await h.mirrors.status();
    expect(status).toMatchObject({ entries: 101, rejected: 2, rejectedEntries: problems.join('\n') });

    // Past the share, the copy is refused and the one in service (with its 101 entries) stays.
    server().serve('/partial.xml', whitelistXml(20, { extra: bad }));
    expect(await h.mirrors.refresh('whitelist', { acceptShrink: true })).toMatchObject({
      outcome: 'refused',
      reason: 'malformed',
      error: expect.stringMatching(
        /\(2 of 22 Domaine entries malformed, over directory\.whitelist\.maxInvalidShare 0\.05\)$/,
      ) as unknown,
    });
    expect(h.holder.current().size).toBe(101);
    // A clean copy clears the report.
    server().serve('/partial.xml', withNew(100));
    expect(await h.mirrors.refresh('whitelist')).toMatchObject({ outcome: 'accepted', entries: 101 });
    const [clean] = await h.mirrors.status();
    expect(clean?.rejected).toBe(0);
    expect(clean?.rejectedEntries).toBeUndefined();
    expect(h.holder.current().rejected).toEqual([]);
  });

  it('keeps the last good copy when the source fails, times out or is down', async () => {
    server().serve('/down.xml', withNew(50));
    const h = await mirrorsFor('/down.xml', { timeoutSeconds: 1 });
    expect((await h.mirrors.refresh('whitelist')).outcome).toBe('accepted');
    const inService = h.holder.current();
    const body = Buffer.from(withNew(60));

    server().set('/down.xml', { kind: 'status', status: 500 });
    expect(await h.mirrors.refresh('whitelist')).toMatchObject({
      outcome: 'failed',
      reason: 'http_status',
      error: expect.stringMatching(/HTTP 500/) as unknown,
    });
    server().set('/down.xml', { kind: 'drop' });
    expect(await h.mirrors.refresh('whitelist')).toMatchObject({ outcome: 'failed', reason: 'unreachable' });
    server().set('/down.xml', { kind: 'truncate', body, bytes: 1000 });
    expect(await h.mirrors.refresh('whitelist')).toMatchObject({ outcome: 'failed', reason: 'unreachable' });
    server().set('/down.xml', { kind: 'slow', body, chunks: 40, intervalMs: 100 });
    expect(await h.mirrors.refresh('whitelist')).toMatchObject({ outcome: 'failed', reason: 'timeout' });

    expect(h.holder.current()).toBe(inService);
    expect(h.events('directory.mirror.failed').map((e) => e.reason)).toEqual([
      'http_status',
      'unreachable',
      'unreachable',
      'timeout',
    ]);
    const [status] = await h.mirrors.status();
    expect(status).toMatchObject({ version: 1, entries: 51, lastOutcome: 'failed', lastReason: 'timeout' });
  });

  it('refuses a server whose certificate does not chain to a configured authority', async () => {
    const foreign = await NationalServer.start(inject('pkiDir'), 'peer-foreign');
    try {
      foreign.serve('/lb.xml', withNew(10));
      const h = await track(startMirrors({ directory: { whitelist: { source: foreign.url('/lb.xml') } } }));
      const r = await h.mirrors.refresh('whitelist');
      expect(r).toMatchObject({ outcome: 'failed', reason: 'unreachable' });
      expect(r.error).toMatch(/certificate/i);
      expect(h.holder.current().dnsOf(NEW_DOMAIN).size).toBe(0);
    } finally {
      await foreign.close();
    }
  });

  it('serves the last good copy after a restart, and when the national side is gone', async () => {
    const prefix = uniquePrefix();
    server().serve('/restart.xml', withNew(30));
    const first = await mirrorsFor('/restart.xml', { prefix });
    expect((await first.mirrors.refresh('whitelist')).outcome).toBe('accepted');
    await first.stop();
    untrack(first);

    server().set('/restart.xml', { kind: 'status', status: 503 });
    // A new process starts with the file whitelist, then takes the stored copy before any refresh.
    const second = await mirrorsFor('/restart.xml', { prefix });
    expect([...second.holder.current().dnsOf(NEW_DOMAIN)]).toEqual([normalizeDn(NEW_DN)]);
    expect(await second.mirrors.refresh('whitelist')).toMatchObject({ outcome: 'failed', version: 1 });
    expect(second.holder.current().dnsOf(NEW_DOMAIN).size).toBe(1);
  });
});
