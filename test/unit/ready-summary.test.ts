import { describe, expect, it } from 'vitest';
import { readySummary } from '../../src/app/ready-summary.js';

const input = {
  mode: 'development',
  dataDir: '/srv/mssgw/var',
  pkiDir: '/srv/mssgw/certs-dev',
  listening: { mx: '0.0.0.0:2525', imapTls: '0.0.0.0:9930', admin: '127.0.0.1:9465' },
  embedded: { redis: true, store: true },
  startedInMs: 2345,
};

describe('ready summary (npm start on a terminal)', () => {
  it('says where each listener is, the data directory, the development hints and how to stop', () => {
    const lines = readySummary(input).split('\n');
    expect(lines).toContain('mssgw ready in 2.3 s (mode development, embedded Redis and Dovecot)');
    expect(lines).toContain('  SMTP MX (peer operators, mutual TLS)  0.0.0.0:2525');
    expect(lines).toContain('  IMAP (implicit TLS)                   0.0.0.0:9930');
    expect(lines).toContain('  admin API (mssgw CLI)                 127.0.0.1:9465');
    expect(lines).toContain('  data directory  /srv/mssgw/var');
    expect(
      lines.some((l) => l.startsWith('  development PKI /srv/mssgw/certs-dev (never for production')),
    ).toBe(true);
    expect(lines).toContain(
      '  a token for XOAUTH2/OAUTHBEARER: bin/mssgw.js dev-token --subject 810000000001',
    );
    expect(lines.some((l) => l.includes('bin/mssgw.js --help') && l.includes('stop: Ctrl-C'))).toBe(true);
  });

  it('gives no development hint in production, nor an embedded note for external backends', () => {
    const text = readySummary({ ...input, mode: 'production', embedded: { redis: false, store: false } });
    expect(text).toContain('mssgw ready in 2.3 s (mode production)\n');
    expect(text).not.toMatch(/development PKI|dev-token/);
    expect(text).toContain('stop: Ctrl-C');
  });
});
