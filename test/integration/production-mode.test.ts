import { spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { Gateway } from '../../src/app/index.js';
import { GatewayError, isGatewayError } from '../../src/errors/index.js';
import { authoritiesWithoutRevocation } from '../../src/directory/index.js';
import { createLogger } from '../../src/observability/index.js';
import { assertProductionTrust, loadTrustMaterial } from '../../src/pki/index.js';
import { devIssuerConfig } from '../../src/auth/index.js';
import { launchChildGateway, stopChildGateways } from '../helpers/child-gateway.js';
import { scratchDir, testConfig, testSettings } from '../helpers/gateway.js';

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

/** A root that is not a TEST one and our certificate issued by it, made with openssl. */
function nonTestPki(): (file: string) => string {
  const dir = scratchDir('prod-pki');
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'root.key',
      '-out',
      'root.crt',
      '-days',
      '30',
      '-subj',
      '/C=FR/O=ASIP-SANTE/CN=AC RACINE IGC-SANTE ELEMENTAIRE',
      '-addext',
      'basicConstraints=critical,CA:true',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  openssl(
    [
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'gw.key',
      '-out',
      'gw.csr',
      '-subj',
      '/C=FR/O=Operateur/CN=mx.op.example',
    ],
    dir,
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'gw.csr',
      '-CA',
      'root.crt',
      '-CAkey',
      'root.key',
      '-CAcreateserial',
      '-out',
      'gw.crt',
      '-days',
      '30',
    ],
    dir,
  );
  return (f: string) => path.join(dir, f);
}

describe('production mode', () => {
  it('refuses development PKI files before anything starts, naming each setting', () => {
    expect(() => testConfig({ overrides: { mode: 'production' } })).toThrow(
      /tls\.certFile: mode is production but .* is a development PKI file/,
    );
  });

  it('the process exits with status 78 and names the settings to fix', async (context) => {
    context.onTestFinished(() => stopChildGateways());
    const config = testSettings({
      overrides: {
        mode: 'production',
        admin: { host: '0.0.0.0' },
        auth: { issuers: [devIssuerConfig(inject('pkiDir'))] },
      },
    });
    const gw = launchChildGateway({ config });
    const exit = await gw.waitExit(60_000);
    expect(exit.code).toBe(78);
    const out = gw.tail(60);
    for (const key of ['tls.certFile', 'tls.caFiles.0', 'whitelistFile', 'admin.tokenFile']) {
      expect(out).toContain(`  - ${key}: `);
    }
    expect(out).toMatch(/auth\.issuers\.0\.development: mode is production but token issuer development/);
  });

  it('refuses to start with the development (TEST) authorities, naming the setting', async () => {
    // pkiDir elsewhere: the files are no longer recognised by their place, only by their content.
    const config = testConfig({ overrides: { mode: 'production', pkiDir: scratchDir('not-the-pki') } });
    const err: unknown = await Gateway.start(config, { logger: createLogger({ level: 'silent' }) }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('PKI_TEST_ANCHOR_IN_PRODUCTION');
    expect((err as GatewayError).message).toMatch(/tls\.caFiles/);
    expect((err as GatewayError).message).toMatch(/CN=TEST AC RACINE IGC-SANTE ELEMENTAIRE/);
  });

  it('accepts authorities that are not test ones', () => {
    const p = nonTestPki();
    const { material } = loadTrustMaterial({
      certFile: p('gw.crt'),
      keyFile: p('gw.key'),
      chainFiles: [],
      caFiles: [p('root.crt')],
      crlFiles: [],
    });
    expect(() => assertProductionTrust(material)).not.toThrow();
  });

  it('refuses to start while a trusted authority has no revocation list, naming the settings', async () => {
    const p = nonTestPki();
    const base = testConfig();
    const production = (directory: Partial<typeof base.directory>) => ({
      ...base,
      mode: 'production' as const,
      pkiDir: scratchDir('not-the-pki'),
      tls: {
        ...base.tls,
        certFile: p('gw.crt'),
        keyFile: p('gw.key'),
        chainFiles: [],
        caFiles: [p('root.crt')],
        crlFiles: [],
      },
      directory: { ...base.directory, ...directory },
    });
    const silent = { logger: createLogger({ level: 'silent' }) };
    const err: unknown = await Gateway.start(production({ crls: [] }), silent).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('PKI_NO_REVOCATION');
    expect((err as GatewayError).message).toBe(
      'mode is production but no revocation list covers C=FR, O=ASIP-SANTE, CN=AC RACINE IGC-SANTE ELEMENTAIRE: add its CRL to tls.crlFiles or a mirror naming it as issuer to directory.crls',
    );
    // A mirror naming that authority is a source: the start goes past the trust check (and fails later
    // on what this test does not provide, or starts).
    const mirror = {
      name: 'root',
      source: 'https://crl.example.invalid/root.crl',
      issuer: 'CN=AC RACINE IGC-SANTE ELEMENTAIRE, O=ASIP-SANTE, C=FR',
      refreshSeconds: 3600,
    };
    const next: unknown = await Gateway.start(production({ crls: [mirror] }), silent).then(
      (gw) => gw.stop().then(() => undefined),
      (e: unknown) => e,
    );
    expect(isGatewayError(next) ? next.code : undefined).not.toBe('PKI_NO_REVOCATION');
  });

  it('finds each authority a CRL file covers by the CRL issuer, and one a mirror names', () => {
    const { tls } = testConfig();
    const covered = (crlFiles: readonly string[], mirrors: string[] = []) =>
      authoritiesWithoutRevocation(
        loadTrustMaterial({ ...tls, crlFiles }).material.authorities,
        loadTrustMaterial({ ...tls, crlFiles }).material.crlByFile.values(),
        mirrors,
      ).map((a) => a.subject.split('\n').pop());
    expect(covered(tls.crlFiles)).toEqual([]);
    const withoutOrg = tls.crlFiles.filter((f) => !f.endsWith('org.crl'));
    expect(withoutOrg).toHaveLength(tls.crlFiles.length - 1);
    expect(covered(withoutOrg)).toEqual(['CN=TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS MSSGW-DEV']);
    const org = loadTrustMaterial(tls).material.authorities.find((a) => a.subject.includes('ORGANISATIONS'))!;
    // The mirror's DN in another spelling (order, spacing) still names it.
    const spelled = org.subject.split('\n').reverse().join(' , ');
    expect(covered(withoutOrg, [spelled])).toEqual([]);
  });

  it('refuses a key that does not match the certificate, and an unreadable CRL', () => {
    const config = testConfig();
    const files = { ...config.tls };
    expect(() =>
      loadTrustMaterial({ ...files, keyFile: files.keyFile.replace('gateway', 'peer-trusted') }),
    ).toThrow(/is not the key of/);
    expect(() => loadTrustMaterial({ ...files, crlFiles: [files.certFile] })).toThrow(
      /revocation list .* cannot be loaded/,
    );
  });
});

describe('start-up failures', () => {
  it('names the setting when a port is already in use, and leaves nothing running', async () => {
    const first = await Gateway.start(testConfig(), { logger: createLogger({ level: 'silent' }) });
    try {
      const config = testConfig({ overrides: { smtp: { mx: { port: first.addresses.mx!.port } } } });
      const err: unknown = await Gateway.start(config, { logger: createLogger({ level: 'silent' }) }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(GatewayError);
      expect((err as GatewayError).message).toBe(
        `the MX (SMTP) listener cannot start: 127.0.0.1:${first.addresses.mx!.port} is already in use by another process: stop that process, or set smtp.mx.port to a free port`,
      );
    } finally {
      await first.stop();
    }
  });

  it('npm start with a port held by another process: one line naming the listener and the setting, exit 78, no stack', async (context) => {
    context.onTestFinished(() => stopChildGateways());
    // Another program holds the port: a plain socket listener, not a gateway.
    const holder = net.createServer();
    await new Promise<void>((resolve, reject) => {
      holder.once('error', reject);
      holder.listen(0, '127.0.0.1', resolve);
    });
    context.onTestFinished(() => new Promise<void>((resolve) => holder.close(() => resolve())));
    const held = (holder.address() as net.AddressInfo).port;
    const gw = launchChildGateway({
      config: testSettings({
        overrides: { smtp: { submission: { port: 0, tlsPort: held } }, log: { level: 'info' } },
      }),
      name: 'held-port',
    });
    expect(await gw.waitExit(120_000), gw.tail()).toEqual({ code: 78, signal: null });
    const plain = gw.stderrLines.filter((l) => !l.startsWith('{'));
    expect(plain, gw.tail()).toEqual([
      `mssgw: start failed (CONFIG_INVALID): the submission (implicit TLS) listener cannot start: 127.0.0.1:${held} is already in use by another process: stop that process, or set smtp.submission.tlsPort to a free port`,
    ]);
    // No stack anywhere, neither in the text nor in the JSON log lines.
    expect(gw.stderrLines.join('\n')).not.toMatch(/\n\s+at |\\n\s+at /);
    expect(gw.events().find((e) => e.event === 'gateway.start_failed')).toMatchObject({
      code: 'CONFIG_INVALID',
    });
    expect(holder.listening).toBe(true);
  });
});
