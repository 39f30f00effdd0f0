import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ConfigError, environmentVariables, loadConfig } from '../../src/config/index.js';

const noFiles = { configDir: '/nonexistent', env: {} };

describe('configuration schema', () => {
  it('applies every default when nothing is configured', () => {
    const c = loadConfig(noFiles);
    expect(c.mode).toBe('development');
    expect(c.smtp.mx.port).toBe(2525);
    expect(c.metrics.port).toBe(9464);
    expect(c.admin).toMatchObject({ host: '127.0.0.1', port: 9465 });
    expect(c.domains).toEqual(['op.mssante.test']);
    expect(c.redis.url).toBeUndefined();
    expect(Object.isFrozen(c.smtp.mx)).toBe(true);
  });

  it('takes overrides from environment variables named after the key path', () => {
    const c = loadConfig({
      configDir: '/nonexistent',
      env: { MSSGW_DATA_DIR: '/srv/mssgw', MSSGW_SMTP__MX__PORT: '2626', MSSGW_DOMAINS: 'a.test, b.test' },
    });
    expect(c.dataDir).toBe('/srv/mssgw');
    expect(c.smtp.mx.port).toBe(2626);
    expect(c.domains).toEqual(['a.test', 'b.test']);
  });

  it('takes an IANA time zone, listed or an alias, and refuses a name that is none', () => {
    const zone = (timeZone: string) =>
      loadConfig({ ...noFiles, overrides: { lifecycle: { timeZone } } }).lifecycle.timeZone;
    expect(zone('Europe/Paris')).toBe('Europe/Paris');
    // Not in Intl.supportedValuesOf('timeZone'), which lists canonical names only.
    expect(zone('UTC')).toBe('UTC');
    expect(zone('US/Eastern')).toBe('US/Eastern');
    expect(() => zone('Mars/Olympus_Mons')).toThrow(/lifecycle\.timeZone.*IANA time zone/s);
  });

  it('reports every bad key at once, with its path and source', () => {
    let caught: unknown;
    try {
      loadConfig({
        configDir: '/nonexistent',
        env: { MSSGW_SMTP__MX__PORT: 'seventy', MSSGW_NO_SUCH: '1' },
        overrides: { smtp: { maxRecipients: 0, bogus: true }, mode: 'prod' },
      });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const issues = (caught as ConfigError).issues.map((i) => i.key).sort();
    expect(issues).toEqual(['MSSGW_NO_SUCH', 'mode', 'smtp.bogus', 'smtp.maxRecipients', 'smtp.mx.port']);
    const port = (caught as ConfigError).issues.find((i) => i.key === 'smtp.mx.port');
    expect(port?.source).toBe('MSSGW_SMTP__MX__PORT');
    expect((caught as ConfigError).code).toBe('CONFIG_INVALID');
  });
});

describe('relay settings', () => {
  it('takes static routes and name servers, and names a bad server', () => {
    const c = loadConfig({
      configDir: '/nonexistent',
      env: {},
      overrides: {
        relay: {
          routes: { 'peer.test': [{ host: '10.0.0.2' }] },
          dns: { servers: ['10.0.0.53', '[::1]:5353'] },
        },
      },
    });
    expect(c.relay.routes['peer.test']).toEqual([{ host: '10.0.0.2', port: 25 }]);
    expect(c.relay.dns.servers).toEqual(['10.0.0.53', '[::1]:5353']);
    expect(c.delivery).toMatchObject({ maxAgeHours: 120, delayNoticeHours: 4, drainSeconds: 30 });
    expect(() =>
      loadConfig({
        configDir: '/nonexistent',
        env: {},
        overrides: { relay: { dns: { servers: ['dns.example'] } } },
      }),
    ).toThrow(/relay\.dns\.servers\.0: an IP address/);
  });

  it('bounds connection reuse like Postfix by default, and names a limit out of range', () => {
    const c = loadConfig(noFiles);
    expect(c.relay).toMatchObject({
      maxConnectionsPerDestination: 20,
      maxMessagesPerConnection: 100,
      maxConnectionAgeSeconds: 300,
      idleSeconds: 10,
    });
    for (const [relay, key] of [
      [{ maxConnectionAgeSeconds: 0 }, 'relay.maxConnectionAgeSeconds'],
      [{ maxConnectionAgeSeconds: 7200 }, 'relay.maxConnectionAgeSeconds'],
      [{ maxMessagesPerConnection: 0 }, 'relay.maxMessagesPerConnection'],
      [{ idleSeconds: -1 }, 'relay.idleSeconds'],
    ] as const) {
      let caught: unknown;
      try {
        loadConfig({ ...noFiles, overrides: { relay } });
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).issues.map((i) => i.key)).toEqual([key]);
    }
  });
});

describe('configuration rules across keys', () => {
  it('names the key to fix for an incomplete external store and an exposed admin API', () => {
    let caught: unknown;
    try {
      loadConfig({
        ...noFiles,
        overrides: { store: { imap: { host: 'h', port: 1 } }, admin: { host: '0.0.0.0' } },
      });
    } catch (err) {
      caught = err;
    }
    expect((caught as ConfigError).issues.map((i) => i.key).sort()).toEqual([
      'admin.tokenFile',
      'store.lmtp',
    ]);
  });

  it('takes a fixed IMAP port for the embedded Dovecot, refused with an external store or on a port in use', () => {
    expect(loadConfig({ ...noFiles, overrides: { store: { embeddedImapPort: 14300 } } }).store).toMatchObject(
      {
        embeddedImapPort: 14300,
      },
    );
    expect(loadConfig(noFiles).store.embeddedImapPort).toBeUndefined();
    const refused = (overrides: Record<string, unknown>) => {
      try {
        loadConfig({ ...noFiles, overrides });
      } catch (err) {
        return (err as ConfigError).issues.map(({ key, message }) => `${key}: ${message}`);
      }
      return [];
    };
    expect(
      refused({
        store: {
          imap: { host: 'h', port: 1 },
          lmtp: { host: 'h', port: 2 },
          masterPasswordFile: '/etc/mssgw/master',
          embeddedImapPort: 14300,
        },
      }),
    ).toEqual([
      'store.embeddedImapPort: applies to the embedded store only: remove it, or remove store.imap and store.lmtp',
    ]);
    expect(refused({ store: { embeddedImapPort: 9465 } })).toEqual([
      'store.embeddedImapPort: port 9465 is also admin.port (127.0.0.1): two listeners cannot share a port',
    ]);
    expect(refused({ store: { embeddedImapPort: 0 } })).toEqual([
      expect.stringMatching(/^store\.embeddedImapPort: /),
    ]);
  });
});

describe('production mode refusals', () => {
  const dev = {
    pkiDir: '/srv/dev-pki',
    whitelistFile: '/srv/dev-pki/whitelist.xml',
    tls: {
      certFile: 'certs-dev/gateway.crt',
      keyFile: '/etc/mssgw/tls/gateway.key',
      chainFiles: ['/etc/mssgw/tls/chain.pem'],
      caFiles: ['/etc/mssgw/tls/root.crt', '/srv/dev-pki/ca/org.crt'],
      crlFiles: [],
    },
    auth: {
      issuers: [
        {
          name: 'development',
          issuer: 'https://dev-issuer.mssgw.invalid/realms/esante-wallet',
          jwksFile: '/srv/dev-pki/dev-issuer/jwks.json',
          development: true,
        },
      ],
    },
  };

  function issues(overrides: Record<string, unknown>): Array<{ key: string; message: string }> {
    try {
      loadConfig({ ...noFiles, overrides });
    } catch (err) {
      if (err instanceof ConfigError) return err.issues.map(({ key, message }) => ({ key, message }));
      throw err;
    }
    return [];
  }

  it('refuses development PKI files and development token issuers, naming each setting', () => {
    const found = issues({ ...dev, mode: 'production' });
    expect(found.map((i) => i.key).sort()).toEqual([
      'auth.issuers.0.audience',
      'auth.issuers.0.development',
      'auth.issuers.0.issuer',
      'auth.issuers.0.jwksFile',
      'tls.caFiles.1',
      'tls.certFile',
      'tls.crlFiles',
      'whitelistFile',
    ]);
    expect(found.find((i) => i.key === 'tls.certFile')?.message).toMatch(
      /^mode is production but certs-dev\/gateway\.crt is a development PKI file/,
    );
    expect(found.find((i) => i.key === 'auth.issuers.0.development')?.message).toMatch(
      /remove it from auth\.issuers/,
    );
  });

  it('refuses no revocation source, an unnamed CRL mirror and an issuer without aud/azp check, naming each setting', () => {
    const prod = {
      mode: 'production',
      pkiDir: '/srv/dev-pki',
      whitelistFile: '/etc/mssgw/whitelist.xml',
      tls: {
        certFile: '/etc/mssgw/tls/gateway.crt',
        keyFile: '/etc/mssgw/tls/gateway.key',
        chainFiles: [],
        caFiles: ['/etc/mssgw/tls/root.crt'],
        crlFiles: [],
      },
    };
    const psc = {
      name: 'psc-production',
      issuer: 'https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet',
      jwksUrl: 'https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet/protocol/openid-connect/certs',
    };
    const found = issues({ ...prod, auth: { issuers: [psc] } });
    expect(found).toEqual([
      {
        key: 'tls.crlFiles',
        message:
          'mode is production but no revocation list is configured: give each authority of tls.caFiles a CRL file in tls.crlFiles or a mirror in directory.crls',
      },
      {
        key: 'auth.issuers.0.audience',
        message:
          "mode is production but token issuer psc-production checks neither `aud` nor `azp`: set auth.issuers.0.audience or auth.issuers.0.authorizedParty to the operator's client ids",
      },
    ]);
    const mirror = { name: 'root', source: 'https://crl.example.invalid/root.crl' };
    expect(
      issues({
        ...prod,
        directory: { crls: [mirror] },
        auth: { issuers: [{ ...psc, authorizedParty: ['op'] }] },
      }),
    ).toEqual([
      {
        key: 'directory.crls.0.issuer',
        message:
          'mode is production but CRL mirror root does not name its authority: set the subject DN of the authority (one of tls.caFiles) it is for',
      },
    ]);
    // Either check is enough; a mirror naming its authority or a CRL file is a source.
    expect(
      issues({
        ...prod,
        directory: { crls: [{ ...mirror, issuer: 'CN=AC RACINE,O=ASIP-SANTE,C=FR' }] },
        auth: { issuers: [{ ...psc, audience: ['op'] }] },
      }),
    ).toEqual([]);
    expect(
      issues({
        ...prod,
        tls: { ...prod.tls, crlFiles: ['/etc/mssgw/tls/root.crl'] },
        auth: { issuers: [{ ...psc, authorizedParty: ['op'] }] },
      }),
    ).toEqual([]);
  });

  it('refuses the defaults, which are the development PKI, when only the mode is production', () => {
    const keys = issues({ mode: 'production' }).map((i) => i.key);
    expect(keys).toEqual(expect.arrayContaining(['tls.certFile', 'tls.keyFile', 'tls.caFiles.0']));
  });

  it('refuses the development OpenID provider and a portal without Pro Santé Connect', () => {
    const portal = {
      enabled: true,
      devProvider: { enabled: true },
      oidc: { issuer: 'http://127.0.0.1:9444' },
    };
    const keys = issues({ mode: 'production', portal }).map((i) => i.key);
    expect(keys).toEqual(
      expect.arrayContaining([
        'portal.devProvider.enabled',
        'portal.oidc.issuer',
        'portal.oidc.clientSecretFile',
        'portal.publicUrl',
      ]),
    );
    expect(issues({ portal })).toEqual([]);
  });

  it('accepts the same development settings in development mode', () => {
    expect(issues(dev)).toEqual([]);
  });

  it('refuses a non-loopback admin API without a token, and accepts any 127/8 address', () => {
    expect(issues({ admin: { host: '10.1.2.3' } }).map((i) => i.key)).toEqual(['admin.tokenFile']);
    expect(issues({ admin: { host: '127.0.0.2' } })).toEqual([]);
  });

  it('loads the shipped production example, which sets every setting', () => {
    const file = path.resolve(import.meta.dirname, '../../deploy/config/production.yaml');
    const c = loadConfig({ configDir: '/nonexistent', env: {}, files: [file] });
    expect(c.mode).toBe('production');
    expect(c.smtp.mx.port).toBe(25);
    const tree: unknown = parseYaml(readFileSync(file, 'utf8'));
    const has = (key: string) =>
      key.split('.').reduce<unknown>((node, k) => (isObject(node) ? node[k] : undefined), tree) !== undefined;
    // redis.url and redis.sentinels are alternatives: the example uses the sentinels. The embedded
    // store's port is the alternative of store.imap (an external store), and refused with it.
    const alternatives = new Set(['redis.url', 'store.embeddedImapPort']);
    expect(environmentVariables().filter((v) => !has(v.key) && !alternatives.has(v.key))).toEqual([]);
  });

  it('loads the configuration of the Kubernetes ConfigMap', () => {
    const file = path.resolve(import.meta.dirname, '../../deploy/kubernetes/configmap.yaml');
    const configMap = parseYaml(readFileSync(file, 'utf8')) as { data: Record<string, string> };
    const settings = parseYaml(configMap.data['mssgw.yaml']!) as Record<string, unknown>;
    const c = loadConfig({ ...noFiles, overrides: settings });
    expect(c.mode).toBe('production');
    expect([c.smtp.mx.port, c.metrics.host]).toEqual([2525, '0.0.0.0']);
  });
});

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
