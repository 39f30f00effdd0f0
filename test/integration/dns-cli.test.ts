import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { runMssgwInProcess as mssgw } from '../helpers/admin-cli.js';

function configFile(settings: Record<string, unknown>): Record<string, string> {
  const dir = path.join(inject('scratchDir'), `dns-${randomUUID().slice(0, 8)}`);
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'mssgw.json');
  writeFileSync(file, JSON.stringify({ dataDir: path.join(dir, 'var'), ...settings }));
  return { MSSGW_CONFIG: file };
}

describe('mssgw dns records', () => {
  it('prints the four RFC 6186 SRV records of each domain with the public names and ports', async () => {
    const env = configFile({
      domains: ['op.mssante.test', 'cabinet.mssante.test'],
      smtp: {
        hostname: 'mx.op.mssante.test',
        submission: {
          port: 5870,
          tlsPort: 4650,
          publicHost: 'smtp.op.mssante.test',
          publicPort: 587,
          publicTlsPort: 465,
        },
      },
      imap: { port: 1430, tlsPort: 9930, publicPort: 143, publicTlsPort: 993 },
    });
    const run = await mssgw(['dns', 'records', '--ttl', '600'], env);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(
      [
        '; op.mssante.test: mail client access (RFC 6186, RFC 8314)',
        '_submissions._tcp.op.mssante.test. 600 IN SRV 0 1 465 smtp.op.mssante.test.',
        '_submission._tcp.op.mssante.test.  600 IN SRV 10 1 587 smtp.op.mssante.test.',
        '_imaps._tcp.op.mssante.test.       600 IN SRV 0 1 993 mx.op.mssante.test.',
        '_imap._tcp.op.mssante.test.        600 IN SRV 10 1 143 mx.op.mssante.test.',
        '; cabinet.mssante.test: mail client access (RFC 6186, RFC 8314)',
        '_submissions._tcp.cabinet.mssante.test. 600 IN SRV 0 1 465 smtp.op.mssante.test.',
        '_submission._tcp.cabinet.mssante.test.  600 IN SRV 10 1 587 smtp.op.mssante.test.',
        '_imaps._tcp.cabinet.mssante.test.       600 IN SRV 0 1 993 mx.op.mssante.test.',
        '_imap._tcp.cabinet.mssante.test.        600 IN SRV 10 1 143 mx.op.mssante.test.',
        '',
      ].join('\n'),
    );
  });

  it('uses the listening ports by default and marks a disabled service "not available"', async () => {
    const env = configFile({
      domains: ['hôpital.mssante.test'],
      smtp: { hostname: 'mail.hôpital.mssante.test', submission: { enabled: false } },
    });
    const run = await mssgw(['dns', 'records'], env);
    expect(run.code).toBe(0);
    expect(run.stdout.split('\n').slice(1, 5)).toEqual([
      '_submissions._tcp.xn--hpital-ixa.mssante.test. 3600 IN SRV 0 0 0 .',
      '_submission._tcp.xn--hpital-ixa.mssante.test.  3600 IN SRV 0 0 0 .',
      '_imaps._tcp.xn--hpital-ixa.mssante.test.       3600 IN SRV 0 1 9930 mail.xn--hpital-ixa.mssante.test.',
      '_imap._tcp.xn--hpital-ixa.mssante.test.        3600 IN SRV 10 1 1430 mail.xn--hpital-ixa.mssante.test.',
    ]);
    const bad = await mssgw(['dns', 'records', '--ttl', 'soon'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('give a TTL in seconds');
  });
});
