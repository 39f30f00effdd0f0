import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import { describe, expect, it, vi } from 'vitest';
import { MIRROR_QUEUE, bullPrefix } from '../../src/directory/index.js';
import { normalizeDn } from '../../src/pki/index.js';
import {
  type MirrorsHarness,
  scratchDir,
  startMirrors,
  uniquePrefix,
  useNationalServer,
} from '../helpers/directory-harness.js';
import { extractionText, whitelistXml, zipOf } from '../helpers/national-data.js';

const DOMAIN = 'ch-exemple.mssante.fr';
const addr = (i: number) => `user${i}@${DOMAIN}`;
const CORE_DOMAIN = 'core.mssante.test';
const CORE_DN = 'CN=mx.core.test,OU=318000000000042,O=Operateur Coeur,C=FR';
const core = [{ domain: CORE_DOMAIN, dn: CORE_DN }];

const { server, track } = useNationalServer();

describe('switching copies', () => {
  it('never lets a lookup miss while refreshes switch versions, in this process and another', async () => {
    // Two copies of each mirror that share a core: readers only ask for the core.
    const extractions = [
      await zipOf({ 'e.txt': extractionText(3000) }),
      await zipOf({ 'e.txt': extractionText(3100).replace(/Cardiologie/g, 'Pneumologie') }),
    ];
    const whitelists = [
      whitelistXml(300, { extra: core }),
      whitelistXml(310, { extra: core, suffix: 'autre.example' }),
    ];
    server().serve('/switch.zip', extractions[0]!);
    server().serve('/switch.xml', whitelists[0]!);
    const prefix = uniquePrefix();
    const directory = {
      whitelist: { source: server().url('/switch.xml') },
      extraction: { source: server().url('/switch.zip') },
    };
    const refresher = await track(startMirrors({ directory, prefix }));
    expect((await refresher.mirrors.refresh('extraction')).outcome).toBe('accepted');
    expect((await refresher.mirrors.refresh('whitelist')).outcome).toBe('accepted');
    const follower = await track(startMirrors({ directory, prefix }));

    const sample = Array.from({ length: 200 }, (_, i) => addr(i * 15));
    const dn = normalizeDn(CORE_DN);
    let stop = false;
    let lookups = 0;
    const misses: string[] = [];
    const reader = async (h: MirrorsHarness) => {
      while (!stop) {
        try {
          const known = await h.mirrors.directory.knownAmong(sample);
          if (known.size !== sample.length) misses.push(`batch: ${known.size} of ${sample.length}`);
          const one = await h.mirrors.directory.entryOf(sample[lookups % sample.length]!);
          if (!one) misses.push(`entry ${sample[lookups % sample.length]}`);
          if (!h.holder.current().allows(dn, CORE_DOMAIN)) misses.push('whitelist');
        } catch (err) {
          misses.push(`error ${(err as Error).message}`);
        }
        lookups++;
      }
    };
    const readers = [reader(refresher), reader(refresher), reader(follower), reader(follower)];

    const versions: number[] = [];
    for (let round = 1; round <= 6; round++) {
      server().serve('/switch.zip', extractions[round % 2]!);
      server().serve('/switch.xml', whitelists[round % 2]!);
      const [e, w] = await Promise.all([
        refresher.mirrors.refresh('extraction'),
        refresher.mirrors.refresh('whitelist'),
      ]);
      expect([e.outcome, w.outcome]).toEqual(['accepted', 'accepted']);
      versions.push(e.version ?? 0);
    }
    // The follower switches too (pub/sub), to the same whitelist as the refresher.
    await vi.waitFor(() => expect(follower.holder.current().size).toBe(refresher.holder.current().size), {
      timeout: 60_000,
    });
    await vi.waitFor(() => expect(follower.holder.current().dnsOf('d0.mssante.example').size).toBe(1), {
      timeout: 60_000,
    });
    stop = true;
    await Promise.all(readers);

    expect(misses).toEqual([]);
    expect(lookups).toBeGreaterThan(100);
    expect(versions).toEqual([2, 3, 4, 5, 6, 7]);
    expect((await follower.mirrors.directory.entryOf(addr(0)))?.service).toBe('Cardiologie');
    expect(follower.events('directory.mirror.accepted')).toEqual([]);
  });

  it('runs one refresh for two processes on one Redis, and both switch', async () => {
    const dir = scratchDir('two');
    const whitelistFile = path.join(dir, 'liste.xml');
    const extractionFile = path.join(dir, 'extraction.txt');
    writeFileSync(whitelistFile, whitelistXml(40, { extra: core }));
    writeFileSync(extractionFile, extractionText(200));
    const prefix = uniquePrefix();
    const directory = { whitelist: { source: whitelistFile }, extraction: { source: extractionFile } };
    const [a, b] = await Promise.all([
      track(startMirrors({ directory, prefix, runRefreshes: true })),
      track(startMirrors({ directory, prefix, runRefreshes: true })),
    ]);

    // Started with file sources, the scheduled refreshes run at once: one of the two does each.
    for (const h of [a, b]) {
      await vi.waitFor(() => expect(h.holder.current().dnsOf(CORE_DOMAIN).size).toBe(1), { timeout: 60_000 });
      await vi.waitFor(async () => expect(await h.mirrors.directory.isKnown(addr(199))).toBe(true), {
        timeout: 60_000,
      });
    }
    const accepted = (mirror: string) =>
      [...a.events('directory.mirror.accepted'), ...b.events('directory.mirror.accepted')].filter(
        (e) => e.mirror === mirror,
      );
    // A reader sees the new copy as soon as it is switched; its refresh reports it just after.
    await vi.waitFor(
      () => {
        expect(accepted('whitelist')).toHaveLength(1);
        expect(accepted('extraction')).toHaveLength(1);
      },
      { timeout: 60_000 },
    );

    const connection = a.redis.duplicate();
    const schedulers = new Queue(MIRROR_QUEUE, { connection, prefix: bullPrefix(prefix) });
    try {
      const ids = (await schedulers.getJobSchedulers()).map((s) => s.key).sort();
      expect(ids).toEqual(['mirror:extraction', 'mirror:whitelist']);
    } finally {
      await schedulers.close();
      await connection.quit();
    }

    // Two processes asked at once: one refresh runs, the other finds it busy or already done.
    writeFileSync(extractionFile, extractionText(210));
    const results = await Promise.all([a.mirrors.refresh('extraction'), b.mirrors.refresh('extraction')]);
    expect(results.filter((r) => r.outcome === 'accepted')).toHaveLength(1);
    expect(results.every((r) => ['accepted', 'unchanged', 'skipped'].includes(r.outcome))).toBe(true);
    for (const h of [a, b]) {
      await vi.waitFor(async () => expect(await h.mirrors.directory.isKnown(addr(209))).toBe(true), {
        timeout: 60_000,
      });
    }
  });
});
