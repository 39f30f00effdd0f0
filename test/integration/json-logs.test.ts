import { readFileSync } from 'node:fs';
import { afterEach, expect, inject, it } from 'vitest';
import { devPkiSettings } from '../../src/pki/index.js';
import { dovecotPaths } from '../../src/store/index.js';
import { startChildGateway, stopChildGateways } from '../helpers/child-gateway.js';
import { scratchDir } from '../helpers/gateway.js';

/**
 * Issue #11 item 8: while Redis goes away and comes back under a running gateway, everything the
 * gateway writes on stderr is a JSON log line (ioredis and BullMQ errors go through the logger), and
 * no secret appears in it.
 */
afterEach((context) => stopChildGateways(context));

it('logs only JSON lines while Redis is down and back', async () => {
  const dataDir = scratchDir('json-logs');
  const gw = await startChildGateway({
    name: 'json-logs',
    config: {
      dataDir,
      ...devPkiSettings(inject('pkiDir')),
      smtp: {
        hostname: 'mx.op.mssante.test',
        mx: { host: '127.0.0.1', port: 0 },
        submission: { host: '127.0.0.1', port: 0, tlsPort: 0 },
      },
      imap: { host: '127.0.0.1', port: 0, tlsPort: 0 },
      metrics: { port: 0 },
      admin: { port: 0 },
      log: { level: 'info' },
    },
  });
  const started = gw.events().filter((e) => e.event === 'redis.started');
  const pid = started.at(-1)?.childPid;
  expect(typeof pid).toBe('number');
  process.kill(pid as number, 'SIGKILL');
  await gw.waitForEvent((e) => e.event === 'redis.exited');
  // The supervisor starts it again; the gateway's clients reconnect meanwhile, failing.
  await gw.waitForEvent((e) => e.event === 'redis.started' && e.childPid !== pid, 60_000);
  await gw.waitForEvent((e) => e.event === 'redis.client.error' || e.event === 'queue.worker_error');
  gw.kill('SIGTERM');
  await gw.waitExit(60_000);
  const notJson = gw.stderrLines.filter((line) => {
    try {
      return typeof JSON.parse(line) !== 'object';
    } catch {
      return true;
    }
  });
  expect(notJson, 'stderr lines that are not JSON').toEqual([]);
  const master = readFileSync(dovecotPaths(dataDir).secretFile, 'utf8').trim();
  expect(gw.stderrLines.join('\n')).not.toContain(master);
});
