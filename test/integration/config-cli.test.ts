import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { runMssgwInProcess as mssgw } from '../helpers/admin-cli.js';

function configFile(settings: Record<string, unknown>): Record<string, string> {
  const dir = path.join(inject('scratchDir'), `config-cli-${randomUUID().slice(0, 8)}`);
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'mssgw.json');
  writeFileSync(file, JSON.stringify({ dataDir: path.join(dir, 'var'), ...settings }));
  return { MSSGW_CONFIG: file };
}

describe('mssgw config check', () => {
  it('refuses two listeners on one port, naming both', async () => {
    const env = configFile({ imap: { port: 2525 } });
    const run = await mssgw(['config', 'check'], env);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(
      '  - imap.port: port 2525 is also smtp.mx.port (0.0.0.0): two listeners cannot share a port',
    );
  });

  it('accepts one port on two distinct addresses, a disabled listener and port 0', async () => {
    const env = configFile({
      metrics: { host: '127.0.0.1', port: 9000 },
      admin: { host: '127.0.0.2', port: 9000 },
      portal: { enabled: false, port: 2525 },
      smtp: { mx: { port: 0 }, submission: { port: 0 } },
    });
    const run = await mssgw(['config', 'check'], env);
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/^configuration valid \(mode development/);
    expect(run.code).toBe(0);
  });

  it('--json prints a schema error as JSON too', async () => {
    const run = await mssgw(['config', 'check', '--json'], configFile({ log: { level: 'loud' } }));
    expect(run.code).toBe(1);
    const answer = JSON.parse(run.stdout) as { valid: boolean; problems: Array<{ key: string }> };
    expect(answer).toMatchObject({ valid: false, problems: [{ key: 'log.level' }] });
  });

  it('--json prints the problems of an invalid configuration as JSON', async () => {
    const env = configFile({ smtp: { submission: { tlsPort: 9465 } }, imap: { tlsPort: 9464 } });
    const run = await mssgw(['config', 'check', '--json'], env);
    expect(run.code).toBe(1);
    const answer = JSON.parse(run.stdout) as { valid: boolean; problems: Array<{ key: string }> };
    expect(answer.valid).toBe(false);
    expect(answer.problems).toContainEqual({
      key: 'admin.port',
      message: 'port 9465 is also smtp.submission.tlsPort (0.0.0.0): two listeners cannot share a port',
    });
    expect(answer.problems.map((p) => p.key).sort()).toEqual(['admin.port', 'metrics.port']);
    expect(run.stderr).toBe('error: invalid configuration (2 problems listed on standard output)\n');
  });
});
