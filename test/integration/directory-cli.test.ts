import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { inject } from 'vitest';
import { stringify } from 'yaml';
import { devPkiSettings } from '../../src/pki/index.js';
import { runMssgwInProcess as mssgw } from '../helpers/admin-cli.js';
import { type MirrorsHarness, scratchDir, startMirrors, uniquePrefix } from '../helpers/directory-harness.js';
import { extractionText, whitelistXml } from '../helpers/national-data.js';
import { NationalServer } from '../helpers/national-server.js';

let server: NationalServer;
let gateway: MirrorsHarness;
let env: Record<string, string>;
let extractionFile: string;

beforeAll(async () => {
  const pkiDir = inject('pkiDir');
  server = await NationalServer.start(pkiDir);
  server.serve('/lb.xml', whitelistXml(40));
  const dir = scratchDir('dir-cli');
  extractionFile = path.join(dir, 'Extraction_Correspondance_MSSante.txt');
  writeFileSync(extractionFile, extractionText(100));
  const prefix = uniquePrefix();
  const directory = { whitelist: { source: server.url('/lb.xml') }, extraction: { source: extractionFile } };
  // The "gateway": its worker takes the jobs the CLI hands over.
  gateway = await startMirrors({ directory, prefix, runRefreshes: true });
  const configFile = path.join(dir, 'mssgw.yaml');
  writeFileSync(
    configFile,
    stringify({
      dataDir: path.join(dir, 'var'),
      ...devPkiSettings(pkiDir),
      redis: { url: inject('redisUrl'), prefix },
      directory,
    }),
  );
  env = { MSSGW_CONFIG: configFile };
  // Started with no copy in service, the gateway refreshes both mirrors at once.
  await vi.waitFor(
    async () => {
      const states = await gateway.mirrors.status();
      expect(states.map((s) => s.version)).toEqual([1, 1]);
    },
    { timeout: 60_000 },
  );
});

afterAll(async () => {
  await gateway.stop();
  await server.close();
});

describe('mssgw directory', () => {
  it('shows each mirror: source, copy in service, last refresh and last error', async () => {
    const run = await mssgw(['directory', 'status'], env);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toContain(`whitelist\n  source:      ${server.url('/lb.xml')} (every 60 min)\n`);
    expect(run.stdout).toMatch(/ {2}in service: {2}version 1, 40 entries, [\d.]+ KiB, age \d+ s\n/);
    expect(run.stdout).toContain(`extraction\n  source:      ${extractionFile} (every 24.0 h)\n`);
    expect(run.stdout).toMatch(/extraction[\s\S]+in service: {2}version 1, 100 entries/);
    expect(run.stdout).toMatch(
      /last try: {4}\d{4}-\d\d-\d\dT[\d:.]+Z accepted \(ok\)\n {2}last error: {2}-\n/,
    );

    const json = JSON.parse((await mssgw(['directory', 'status', '--json'], env)).stdout) as Array<
      Record<string, unknown>
    >;
    expect(json.map((s) => [s.mirror, s.version, s.entries])).toEqual([
      ['whitelist', 1, 40],
      ['extraction', 1, 100],
    ]);
  });

  it('refreshes through the running gateway and says what happened', async () => {
    server.serve('/lb.xml', whitelistXml(42));
    const ok = await mssgw(['directory', 'refresh', 'whitelist'], env);
    expect(ok).toMatchObject({ code: 0, stderr: '' });
    expect(ok.stdout).toBe('whitelist: accepted (ok), version 2, 42 entries, +2, −0\n');
    expect(gateway.holder.current().size).toBe(42);

    server.serve('/lb.xml', whitelistXml(10));
    const refused = await mssgw(['directory', 'refresh', 'whitelist'], env);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/^whitelist: refused \(shrink\), version 2: the new copy has 10 entries/);
    expect(refused.stderr).toMatch(/last good copy stays in service \(MIRROR_COPY_REFUSED\)/);
    const status = await mssgw(['directory', 'status'], env);
    expect(status.stdout).toMatch(
      /last try: .* refused \(shrink\)\n {2}last error: {2}the new copy has 10 entries/,
    );

    // A DTD is refused as malformed, with its reason in the status (not "failed (internal)").
    const dtd = '<!DOCTYPE ListeBlancheMSSante [<!ENTITY x "y">]>';
    server.serve('/lb.xml', whitelistXml(42).replace(/(<\?xml[^>]*\?>)?/, `$1${dtd}`));
    const doctype = await mssgw(['directory', 'refresh', 'whitelist'], env);
    expect(doctype.code).toBe(1);
    expect(doctype.stdout).toMatch(
      /^whitelist: refused \(malformed\), version 2: whitelist carries a DOCTYPE/,
    );
    expect((await mssgw(['directory', 'status'], env)).stdout).toMatch(
      /last try: .* refused \(malformed\)\n {2}last error: {2}whitelist carries a DOCTYPE \(DTD\)/,
    );

    // Refused copies used up versions 3 and 4: versions are never reused.
    server.serve('/lb.xml', whitelistXml(10));
    const forced = await mssgw(['directory', 'refresh', 'whitelist', '--accept-shrink'], env);
    expect(forced).toMatchObject({ code: 0 });
    expect(forced.stdout).toMatch(/^whitelist: accepted \(ok\), version 5, 10 entries, \+0, −32\n$/);

    const all = await mssgw(['directory', 'refresh'], env);
    expect(all.code).toBe(0);
    expect(all.stdout).toBe(
      'whitelist: unchanged (same_content), version 5, 10 entries\nextraction: unchanged (same_content), version 1, 100 entries\n',
    );
  });

  it('lists the malformed entries left out of the whitelist in service', async () => {
    server.serve('/lb.xml', whitelistXml(40, { extra: [{ domain: 'not a domain', dn: 'CN=x,C=FR' }] }));
    const ok = await mssgw(['directory', 'refresh', 'whitelist', '--accept-shrink'], env);
    expect(ok).toMatchObject({ code: 0, stderr: '' });
    const status = await mssgw(['directory', 'status'], env);
    expect(status.stdout).toContain(
      '  left out:    1 malformed entries\n    Domaine #1: Nom "not a domain" is not a domain\n',
    );
  });

  it('says so at once when no gateway process works the refreshes', async () => {
    const run = await mssgw(['directory', 'refresh', 'whitelist'], {
      ...env,
      MSSGW_REDIS__PREFIX: uniquePrefix(),
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /no gateway process is working the mirror refreshes .*\(MIRROR_REFRESH_UNAVAILABLE\)\n$/,
    );
  });

  it('names the configured mirrors when asked for another', async () => {
    const run = await mssgw(['directory', 'refresh', 'crl:nope'], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      'error: no mirror crl:nope; configured: whitelist, extraction (MIRROR_UNKNOWN)\n',
    );
  });
});
