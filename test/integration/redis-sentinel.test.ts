import { randomUUID } from 'node:crypto';
import nodemailer from 'nodemailer';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/app/index.js';
import { loadConfig } from '../../src/config/index.js';
import {
  identity,
  PEER_DOMAIN,
  pkiFile,
  scratchDir,
  startTestGateway,
  testSettings,
  uniqueBal,
} from '../helpers/gateway.js';
import { eventually, inboxMessages } from '../helpers/mailbox.js';
import { startSentinelSet, type SentinelSet } from '../helpers/redis-sentinel.js';

/**
 * Issue #14 item 7: `redis.sentinels` reaches Redis through Redis Sentinel natively. Real
 * redis-server and redis-sentinel processes; the primary is killed (-9) while a peer delivers, the
 * sentinels promote the replica, and every message the gateway acknowledged reaches the mailbox
 * once. Writes the dead primary acknowledged but had not replicated yet are what the spool
 * reconciliation is for (delivery.reconcileSeconds, shortened here).
 */

const system = { kind: 'system' as const, id: 'test' };
const TOTAL = 30;
const KILL_AFTER = 8;

function peerTransport(port: number) {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    requireTLS: true,
    name: `mx.${PEER_DOMAIN}`,
    tls: { ...identity('peer-trusted'), ca: pkiFile('ca/root.crt'), servername: 'localhost' },
    connectionTimeout: 10_000,
    socketTimeout: 20_000,
  });
}

function messageIdsOf(messages: Buffer[]): string[] {
  return messages.map((m) => /^Message-ID: <([^>]+)>/im.exec(m.toString('latin1'))?.[1] ?? '?');
}

describe('Redis through Sentinel', () => {
  let set: SentinelSet;
  let gw: Gateway;
  beforeAll(async () => {
    set = await startSentinelSet(scratchDir('sentinel'));
    gw = await startTestGateway({
      overrides: {
        redis: {
          url: undefined,
          sentinels: set.sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })),
          masterName: set.masterName,
        },
        delivery: { reconcileSeconds: 2 },
      },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await set?.stop();
  });

  it('follows a failover of the primary under traffic: every acknowledged message is delivered once', async () => {
    const bal = uniqueBal('sentinel');
    await gw.registry.create({ address: bal, type: 'PER', owner: '810000000001' }, system);
    // The mailbox must survive the primary's death: wait until the replica has it.
    const primary = new Redis({ host: '127.0.0.1', port: set.primary.port, maxRetriesPerRequest: 0 });
    primary.on('error', () => {});
    expect(await primary.call('WAIT', '1', '10000')).toBe(1);
    primary.disconnect();

    const acknowledged: string[] = [];
    let killed = false;
    for (let i = 0; i < TOTAL; i++) {
      const id = `${randomUUID()}@${PEER_DOMAIN}`;
      // A peer MTA retries what it could not hand over (4xx, lost connection) until it gets a 250.
      const deadline = Date.now() + 120_000;
      for (;;) {
        try {
          await peerTransport(gw.addresses.mx!.port).sendMail({
            envelope: { from: `martin@${PEER_DOMAIN}`, to: [bal] },
            raw: `From: <martin@${PEER_DOMAIN}>\r\nTo: <${bal}>\r\nSubject: n${i}\r\nMessage-ID: <${id}>\r\n\r\nbody ${i}\r\n`,
          });
          acknowledged.push(id);
          break;
        } catch (err) {
          const code = (err as { responseCode?: number }).responseCode;
          // Only a temporary refusal or a lost connection is acceptable while Redis fails over.
          if (code !== undefined && (code < 400 || code >= 500)) throw err;
          if (Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      if (acknowledged.length === KILL_AFTER && !killed) {
        set.primary.child.kill('SIGKILL');
        killed = true;
      }
    }
    expect(killed).toBe(true);
    expect(acknowledged).toHaveLength(TOTAL);
    const promoted = await eventually(
      () => set.currentPrimaryPort(),
      (port) => port === set.replica.port,
    );
    expect(promoted).toBe(set.replica.port);

    const messages = await eventually(
      () => inboxMessages(bal),
      (m) => m.length >= TOTAL,
      120_000,
    );
    const ids = messageIdsOf(messages);
    expect(ids.slice().sort()).toEqual(acknowledged.slice().sort());
    expect(new Set(ids).size).toBe(ids.length);

    // The registry writes to the new primary.
    const after = uniqueBal('after');
    await gw.registry.create({ address: after, type: 'PER', owner: '810000000001' }, system);
    const replica = new Redis({ host: '127.0.0.1', port: set.replica.port, maxRetriesPerRequest: 0 });
    replica.on('error', () => {});
    const role = (await replica.call('ROLE')) as [string];
    replica.disconnect();
    expect(role[0]).toBe('master');
  });

  it('refuses a configuration that names both redis.url and redis.sentinels', () => {
    const settings = testSettings({
      overrides: { redis: { sentinels: [{ host: '127.0.0.1', port: 26379 }] } },
    });
    expect(() => loadConfig({ configDir: '/nonexistent', env: {}, overrides: settings })).toThrow(
      /redis\.sentinels.*set either redis\.url \(one server\) or redis\.sentinels/s,
    );
  });
});
