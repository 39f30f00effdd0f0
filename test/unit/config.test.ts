import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';

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
});
