import { randomUUID } from 'node:crypto';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { mintDevToken } from '../../src/auth/index.js';
import type { QueueEntry } from '../../src/delivery/index.js';
import { call } from '../helpers/admin-http.js';
import {
  externalBackendsConfig,
  startChildGateway,
  stopChildGateways,
  type ReadyChildGateway,
} from '../helpers/child-gateway.js';
import { identity, PEER_DOMAIN, pkiFile, scratchDir, uniqueBal } from '../helpers/gateway.js';
import { journalEvents } from '../helpers/journal.js';
import { eventually, inboxMessages } from '../helpers/mailbox.js';
import { tokenSubmission } from '../helpers/smtp-clients.js';

/**
 * Issues #7 and #12, several nodes: two gateway processes share one Redis and one Dovecot, each with
 * its own data directory (its spool) and node.id, as the StatefulSet in deploy/ runs them. A message
 * accepted by either is delivered once, by the node that holds it; a right granted through one is
 * honoured by the other at once; scheduled jobs run once; SIGTERM drains; a node that stays down has
 * its backlog shown by the others and delivers it when it returns.
 */

const OWNER = '810000000001';
const DELEGATE = '810000000002';

afterEach((context) => stopChildGateways(context));

function admin(gw: ReadyChildGateway) {
  return { url: `http://127.0.0.1:${gw.ports.admin}` };
}

function peerTransport(port: number) {
  const peer = identity('peer-trusted');
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    requireTLS: true,
    tls: { key: peer.key, cert: peer.cert, ca: pkiFile('ca/root.crt'), servername: 'localhost' },
    name: `mx.${PEER_DOMAIN}`,
    connectionTimeout: 5_000,
    socketTimeout: 5_000,
  });
}

interface TwoNodes {
  readonly a: ReadyChildGateway;
  readonly b: ReadyChildGateway;
  readonly dirs: { readonly a: string; readonly b: string };
  /** Node B's settings, to start it again on its data directory. */
  readonly configB: Record<string, unknown>;
}

function nodeConfig(dataDir: string, prefix: string, node: string, store?: Record<string, unknown>) {
  return externalBackendsConfig({
    dataDir,
    prefix,
    delivery: { lockSeconds: 2, reconcileSeconds: 2 },
    overrides: { node: { id: node }, ...(store ? { store } : {}) },
  });
}

async function twoNodes(storeOfB?: (dataDir: string) => Record<string, unknown>): Promise<TwoNodes> {
  const dirs = { a: scratchDir('node-a'), b: scratchDir('node-b') };
  const prefix = `test:${randomUUID()}:`;
  const configB = nodeConfig(dirs.b, prefix, 'node-b', storeOfB?.(dirs.b));
  const a = await startChildGateway({ config: nodeConfig(dirs.a, prefix, 'node-a'), name: 'node-a' });
  const b = await startChildGateway({ config: configB, name: 'node-b' });
  return { a, b, dirs, configB };
}

function journalOf(dirs: TwoNodes['dirs']): Array<Record<string, unknown>> {
  return [...journalEvents(dirs.a), ...journalEvents(dirs.b)];
}

async function sendTo(node: ReadyChildGateway, bal: string, label: string): Promise<string> {
  const messageId = `<${label}-${randomUUID()}@${PEER_DOMAIN}>`;
  const t = peerTransport(node.ports.mx);
  try {
    await t.sendMail({
      envelope: { from: `s@${PEER_DOMAIN}`, to: [bal] },
      from: `s@${PEER_DOMAIN}`,
      to: bal,
      subject: label,
      messageId,
      text: 'y',
    });
  } finally {
    t.close();
  }
  return messageId;
}

function copiesOf(inbox: readonly Buffer[], ids: readonly string[]): number[] {
  return ids.map((id) => inbox.filter((m) => m.toString('latin1').includes(id)).length);
}

describe('two gateway nodes', () => {
  it('share rights at once, run scheduled jobs once, and deliver what either accepted once', async () => {
    const { a, b, dirs } = await twoNodes();
    // Scheduled jobs: the whitelist mirror's start-up refresh ran in one process only.
    const accepted = journalOf(dirs).filter((e) => e.event === 'directory.mirror.accepted');
    expect(accepted.filter((e) => e.mirror === 'whitelist')).toHaveLength(1);

    const bal = uniqueBal('shared');
    const created = await call(admin(a), 'POST', '/v1/bals', {
      json: { address: bal, type: 'PER', owner: OWNER },
    });
    expect(created.status).toBe(201);
    // The delegate's own mailbox, where her Sender: points (created through node B).
    const own = uniqueBal('secretary');
    expect(
      (await call(admin(b), 'POST', '/v1/bals', { json: { address: own, type: 'PER', owner: DELEGATE } }))
        .status,
    ).toBe(201);
    // A delegation granted through node A...
    const grant = await call(admin(a), 'POST', `/v1/bals/${encodeURIComponent(bal)}/rights`, {
      json: { right: 'delegate', person: DELEGATE, scopes: ['read', 'send'] },
    });
    expect(grant.status, JSON.stringify(grant.body)).toBe(201);
    // ...is honoured by node B at once: the delegate sends from the mailbox through B.
    const token = await mintDevToken({ pkiDir: inject('pkiDir'), subject: DELEGATE, ttlSeconds: 300 });
    const viaB = tokenSubmission(b.ports.submission, bal, token);
    const sent = await viaB.sendMail({ from: bal, to: bal, subject: 'delegate via B', text: 'x' });
    viaB.close();
    expect(sent.response).toMatch(/^250 /);

    // Mail accepted by either node lands once, delivered by the node that holds it.
    const ids: string[] = [];
    for (const [n, node] of [a, b, a, b, a, b].entries()) ids.push(await sendTo(node, bal, `multi-${n}`));
    const inbox = await eventually(
      () => inboxMessages(bal),
      (m) => m.length >= ids.length + 1,
    );
    expect(copiesOf(inbox, ids)).toEqual(ids.map(() => 1));
    expect(inbox).toHaveLength(ids.length + 1);
    for (const [node, dir] of [
      [a, dirs.a],
      [b, dirs.b],
    ] as const) {
      const spoolIds = new Set(
        journalEvents(dir)
          .filter((e) => e.event === 'smtp.mx.accepted')
          .map((e) => e.spoolId),
      );
      const deliveredHere = journalEvents(dir).filter((e) => e.event === 'delivery.local.delivered');
      expect(deliveredHere.length, `${node.name} delivered what it accepted`).toBeGreaterThanOrEqual(3);
      // Every local delivery a node journals is of a message in its own spool.
      const own = new Set([
        ...spoolIds,
        ...journalEvents(dir)
          .filter((e) => e.event === 'smtp.submission.accepted')
          .map((e) => e.spoolId),
      ]);
      expect(deliveredHere.filter((e) => !own.has(e.spoolId))).toEqual([]);
    }
    // Two starts and a dozen deliveries: room for a busy machine.
  }, 150_000);

  it('SIGTERM on one node mid-traffic: it drains, and every acknowledged message is delivered once', async () => {
    const { a, b } = await twoNodes();
    const bal = uniqueBal('drain');
    expect(
      (await call(admin(b), 'POST', '/v1/bals', { json: { address: bal, type: 'PER', owner: OWNER } }))
        .status,
    ).toBe(201);
    const acked: string[] = [];
    let stopped = false;
    const lane = async (node: ReadyChildGateway, lane: number) => {
      for (let n = 0; n < 15; n += 1) {
        const messageId = `<drain-${lane}-${n}-${randomUUID()}@${PEER_DOMAIN}>`;
        const t = peerTransport(node.ports.mx);
        try {
          await t.sendMail({
            envelope: { from: `s@${PEER_DOMAIN}`, to: [bal] },
            raw: `Message-ID: ${messageId}\r\nSubject: d\r\n\r\nbody\r\n`,
          });
          acked.push(messageId);
          if (node === a && n === 5 && !stopped) {
            stopped = true;
            a.kill('SIGTERM');
          }
        } catch {
          if (node !== a) throw new Error('node B refused a message');
          return; // A stopped accepting: the client goes elsewhere, as a load balancer would
        } finally {
          t.close();
        }
      }
    };
    await Promise.all([lane(a, 0), lane(b, 1)]);
    expect((await a.waitExit(30_000)).code).toBe(0);
    const inbox = await eventually(
      () => inboxMessages(bal),
      (m) => m.length >= acked.length,
      20_000,
    );
    const counts = acked.map((id) => inbox.filter((m) => m.toString('latin1').includes(id)).length);
    expect(counts.filter((c) => c !== 1)).toEqual([]);
    expect(acked.length).toBeGreaterThan(15);
  });

  it('a node that stays down: the other shows its backlog, and it delivers it once when it returns', async () => {
    // Node B cannot reach the store's LMTP: what it accepts waits in its spool.
    const { a, b, dirs, configB } = await twoNodes((dir) => ({
      ...(nodeConfig(dir, 'x', 'x').store as object),
      lmtp: { path: path.join(dir, 'lmtp-down.sock') },
    }));
    const bal = uniqueBal('stranded');
    expect(
      (await call(admin(a), 'POST', '/v1/bals', { json: { address: bal, type: 'PER', owner: OWNER } }))
        .status,
    ).toBe(201);
    const ids = [
      await sendTo(b, bal, 'down-1'),
      await sendTo(b, bal, 'down-2'),
      await sendTo(b, bal, 'down-3'),
    ];
    // The 250 comes once the spool holds the message; its queue job follows a moment later. Kill B
    // once Redis has all three (a job not added yet would wait in B's spool for its next start).
    await eventually(
      async () => (await call(admin(a), 'GET', '/v1/queue')).body as { items: QueueEntry[] },
      (page) => page.items.filter((j) => j.node === 'node-b').length === ids.length,
    );
    b.kill('SIGKILL');
    expect((await b.waitExit()).signal).toBe('SIGKILL');

    // Node A lists B's jobs (mssgw queue list goes through this API) and counts them in its metrics.
    const listed = await eventually(
      async () => (await call(admin(a), 'GET', '/v1/queue')).body as { items: QueueEntry[] },
      (page) => page.items.filter((j) => j.node === 'node-b').length === ids.length,
    );
    expect(listed.items.filter((j) => j.node === 'node-b').map((j) => j.data.recipients)).toEqual(
      ids.map(() => [bal]),
    );
    const metrics = await (await fetch(`http://127.0.0.1:${a.ports.metrics}/metrics`)).text();
    const backlog = [...metrics.matchAll(/^mssgw_queue_jobs\{([^}]*)\} (\d+)$/gm)]
      .filter(([, labels]) => labels!.includes('node="node-b"') && labels!.includes('queue="local"'))
      .reduce((sum, [, , n]) => sum + Number(n), 0);
    expect(backlog).toBe(ids.length);
    expect(metrics).toMatch(/^mssgw_node_last_seen_timestamp_seconds\{node="node-b"\} \d/m);
    // A holds none of it and delivers none of it.
    expect(copiesOf(await inboxMessages(bal), ids)).toEqual([0, 0, 0]);

    // B returns on its own data directory, with the store reachable: each message lands once.
    const fixedB = { ...configB, store: nodeConfig(dirs.b, 'x', 'x').store };
    const back = await startChildGateway({ config: fixedB, name: 'node-b-back' });
    const inbox = await eventually(
      () => inboxMessages(bal),
      (m) => copiesOf(m, ids).every((c) => c >= 1),
      30_000,
    );
    expect(copiesOf(inbox, ids)).toEqual([1, 1, 1]);
    back.kill('SIGTERM');
    expect((await back.waitExit(30_000)).code).toBe(0);
  });
});
