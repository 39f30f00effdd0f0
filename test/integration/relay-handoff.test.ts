import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import nodemailer from 'nodemailer';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { Gateway } from '../../src/app/index.js';
import { mintDevToken } from '../../src/auth/index.js';
import { call } from '../helpers/admin-http.js';
import {
  externalBackendsConfig,
  startChildGateway,
  stopChildGateways,
  type ReadyChildGateway,
} from '../helpers/child-gateway.js';
import { PEER_DOMAIN, pkiFile, scratchDir, startTestGateway, uniqueBal } from '../helpers/gateway.js';
import { journalEvents } from '../helpers/journal.js';
import { queueEvents } from '../helpers/queue-events.js';
import { eventually } from '../helpers/mailbox.js';
import { messageIdOf, type PeerOperator, startPeerOperator } from '../helpers/peer-operator.js';
import { tokenSubmission } from '../helpers/smtp-clients.js';

/**
 * Relay destinations are attempted in-process right after the spool commit, as local mail is
 * (ARCHITECTURE.md §6): the happy path adds no BullMQ job; the queue stays the retry path and the
 * safety net, and a process killed mid-attempt leaves the entry to the next start's reconciliation.
 * Against a real peer MX (smtp-server, dev PKI, mutual TLS), the shared Redis and Dovecot.
 */

const DOCTOR = '810000000001';
const system = { kind: 'system', id: 'test' } as const;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async (context) => {
  await stopChildGateways(context);
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function peer(): Promise<PeerOperator> {
  const p = await startPeerOperator({ leaf: 'peer-trusted' });
  cleanups.push(() => p.stop());
  return p;
}

function admin(): Redis {
  const client = new Redis(inject('redisUrl'));
  cleanups.push(async () => void (await client.quit().catch(() => undefined)));
  return client;
}

async function gateway(p: PeerOperator, relay: Record<string, unknown> = {}): Promise<Gateway> {
  const gw = await startTestGateway({
    overrides: {
      relay: { routes: { [PEER_DOMAIN]: [{ host: '127.0.0.1', port: p.port }] }, idleSeconds: 1, ...relay },
      delivery: { retryInitialSeconds: 0.2, retryMaxSeconds: 1 },
    },
  });
  cleanups.push(() => gw.stop());
  return gw;
}

/** A BAL of ours and a submission client for it; `send` returns the spool id (`queued as`). */
async function sender(gw: Gateway): Promise<{ send: (to: string, messageId: string) => Promise<string> }> {
  const address = uniqueBal('handoff');
  await gw.registry.create({ address, type: 'PER', owner: DOCTOR }, system);
  const accessToken = await mintDevToken({ pkiDir: gw.config.pkiDir, subject: DOCTOR, ttlSeconds: 300 });
  const transport = tokenSubmission(gw.addresses.submission!.port, address, accessToken);
  cleanups.push(() => Promise.resolve(transport.close()));
  return {
    send: async (to, messageId) => {
      const info = await transport.sendMail({
        envelope: { from: address, to: [to] },
        raw: `From: ${address}\r\nTo: ${to}\r\nSubject: hand-off\r\nMessage-ID: ${messageId}\r\n\r\nCompte rendu.\r\n`,
      });
      expect(info.response).toMatch(/^250 /);
      return info.response.split(' ').pop()!;
    },
  };
}

/**
 * The events BullMQ recorded for one job of this gateway's relay queue, oldest first (its events
 * stream: every add, move and completion writes one).
 */
async function jobEvents(redis: Redis, gw: Gateway, spoolId: string): Promise<string[]> {
  const jobId = `${spoolId}~${PEER_DOMAIN}`;
  return (await queueEvents(redis, gw, 'relay')).filter((e) => e.jobId === jobId).map((e) => e.event);
}

function copiesOf(p: PeerOperator, messageId: string): number {
  return p.messages.filter((m) => messageIdOf(m) === messageId).length;
}

/** The relay's journal events for one spool entry, by event name. */
function journaled(dataDir: string, spoolId: string): string[] {
  return journalEvents(dataDir)
    .filter((e) => e.spoolId === spoolId && String(e.event).startsWith('delivery.relay.'))
    .map((e) => String(e.event));
}

function spoolEntries(dataDir: string): string[] {
  return readdirSync(path.join(dataDir, 'spool', 'queue')).filter((f) => f.endsWith('.entry'));
}

const newMessageId = () => `<${randomUUID()}@op.mssante.test>`;

describe('relay hand-off right after commit', () => {
  it('delivers to the peer without any BullMQ job', async () => {
    const p = await peer();
    // A first message opens the connection; the second goes over it, as on a loaded relay (an
    // attempt past 2 s, a handshake on a very busy machine, would get a safety-net job).
    const gw = await gateway(p, { idleSeconds: 60 });
    const redis = admin();
    const s = await sender(gw);
    await s.send(`martin@${PEER_DOMAIN}`, newMessageId());
    await p.received(1);
    const messageId = newMessageId();
    const id = await s.send(`martin@${PEER_DOMAIN}`, messageId);
    await p.received(2);
    const settled = await eventually(
      () => Promise.resolve(spoolEntries(gw.config.dataDir)),
      (entries) => entries.length === 0,
    );
    expect(settled).toEqual([]);
    expect(copiesOf(p, messageId)).toBe(1);
    expect(
      await eventually(
        () => Promise.resolve(journaled(gw.config.dataDir, id)),
        (events) => events.includes('delivery.relay.delivered'),
      ),
    ).toContain('delivery.relay.delivered');
    // No job was ever added for it: not one event in the relay queue's stream.
    expect(await jobEvents(redis, gw, id)).toEqual([]);
    expect(await gw.delivery.list()).toEqual([]);
  });

  it('a temporary failure schedules a BullMQ retry, which delivers', async () => {
    const p = await peer();
    p.faults.push({ kind: 'reject-data', code: 451, message: 'Try again later' });
    const gw = await gateway(p);
    const redis = admin();
    const s = await sender(gw);
    const messageId = newMessageId();
    const id = await s.send(`martin@${PEER_DOMAIN}`, messageId);
    const events = await eventually(
      () => Promise.resolve(journaled(gw.config.dataDir, id)),
      (e) => e.includes('delivery.relay.delivered'),
    );
    expect(events).toEqual(['delivery.relay.deferred', 'delivery.relay.delivered']);
    expect(copiesOf(p, messageId)).toBe(1);
    // The retry went through the queue: added delayed to the attempt's retry time, then worked.
    const queued = await eventually(
      () => jobEvents(redis, gw, id),
      (e) => e.includes('completed'),
    );
    expect(queued).toContain('delayed');
    expect(queued).toContain('active');
    expect(queued.at(-1)).toBe('completed');
    await eventually(
      () => Promise.resolve(spoolEntries(gw.config.dataDir)),
      (entries) => entries.length === 0,
    );
    expect(spoolEntries(gw.config.dataDir)).toEqual([]);
  });

  it('honours the per-destination limit: past it, messages wait in memory for a slot, not in the queue', async () => {
    const p = await peer();
    // The first two transactions are held at the peer: both hand-off slots of the domain are busy.
    const held: Array<() => void> = [];
    for (let n = 0; n < 2; n += 1)
      p.faults.push({ kind: 'hold-data', held: (release) => held.push(release) });
    const gw = await gateway(p, { maxConnectionsPerDestination: 2 });
    const redis = admin();
    const s = await sender(gw);
    const messageIds = Array.from({ length: 4 }, newMessageId);
    const ids: string[] = [];
    for (const messageId of messageIds.slice(0, 2)) ids.push(await s.send(`dest@${PEER_DOMAIN}`, messageId));
    await eventually(
      () => Promise.resolve(held.length),
      (n) => n === 2,
    );
    expect(held).toHaveLength(2);
    for (const messageId of messageIds.slice(2)) ids.push(await s.send(`dest@${PEER_DOMAIN}`, messageId));
    // The two later ones wait in this process for one of the domain's slots (no job).
    expect(gw.delivery.handOffWaiting()).toEqual({ local: 0, relay: 2 });
    for (const release of held) release();
    await p.received(4);
    await eventually(
      () => Promise.resolve(spoolEntries(gw.config.dataDir)),
      (entries) => entries.length === 0,
    );
    expect(messageIds.map((m) => copiesOf(p, m))).toEqual([1, 1, 1, 1]);
    // None waited in the queue (a safety net of a held attempt, if any, is added delayed).
    for (const id of ids) expect(await jobEvents(redis, gw, id)).not.toContain('waiting');
    expect(gw.delivery.handOffWaiting()).toEqual({ local: 0, relay: 0 });
    expect(gw.relay.stats().peakPerDestination.get(PEER_DOMAIN)).toBe(2);
  });
});

describe('relay hand-off and a crash', () => {
  it('kill -9 during the attempt: the next start sends the entry again (at least once)', async () => {
    const p = await peer();
    const dataDir = scratchDir('relay-handoff-kill');
    const prefix = `test:${randomUUID()}:`;
    const config = externalBackendsConfig({
      dataDir,
      prefix,
      delivery: { retryInitialSeconds: 0.2, retryMaxSeconds: 1 },
      overrides: {
        relay: { routes: { [PEER_DOMAIN]: [{ host: '127.0.0.1', port: p.port }] }, idleSeconds: 1 },
      },
    });
    const first = await startChildGateway({ config, name: 'first' });
    const from = await createBal(first);
    // The peer keeps the message and holds its 250: the kill lands inside the duplicate window.
    let held = false;
    p.faults.push({ kind: 'hold-data', held: () => (held = true) });
    const messageId = newMessageId();
    await submit(first, from, messageId);
    await eventually(
      () => Promise.resolve(held),
      (h) => h,
    );
    expect(held).toBe(true);
    first.kill('SIGKILL');
    expect((await first.waitExit()).signal).toBe('SIGKILL');
    await p.quiet();
    expect(copiesOf(p, messageId)).toBe(1);
    expect(spoolEntries(dataDir)).toHaveLength(1);

    const second = await startChildGateway({ config, name: 'second' });
    expect(
      await eventually(
        () => Promise.resolve(spoolEntries(dataDir).length),
        (n) => n === 0,
        90_000,
      ),
      'entries left in the spool',
    ).toBe(0);
    // The reply never reached the dead process: the message is sent again, once.
    expect(copiesOf(p, messageId)).toBe(2);
    expect(journalEvents(dataDir).filter((e) => e.event === 'delivery.relay.delivered')).toHaveLength(1);
    second.kill('SIGTERM');
    expect((await second.waitExit()).code).toBe(0);
  });
});

async function createBal(gw: ReadyChildGateway): Promise<string> {
  const address = uniqueBal('handoff-kill');
  const answer = await call({ url: `http://127.0.0.1:${gw.ports.admin}` }, 'POST', '/v1/bals', {
    json: { address, type: 'PER', owner: DOCTOR },
  });
  expect(answer.status, JSON.stringify(answer.body)).toBe(201);
  return address;
}

async function submit(gw: ReadyChildGateway, from: string, messageId: string): Promise<void> {
  const accessToken = await mintDevToken({ pkiDir: inject('pkiDir'), subject: DOCTOR, ttlSeconds: 600 });
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: gw.ports.submission,
    secure: false,
    requireTLS: true,
    auth: { type: 'OAuth2', user: from, accessToken },
    tls: { ca: pkiFile('ca/root.crt'), servername: 'localhost' },
  });
  try {
    const info = await transport.sendMail({
      from,
      to: `dest@${PEER_DOMAIN}`,
      subject: 'hand-off crash',
      messageId,
      text: 'Compte rendu.\n',
    });
    expect(info.response).toMatch(/^250 /);
  } finally {
    transport.close();
  }
}
