import { randomUUID } from 'node:crypto';
import nodemailer from 'nodemailer';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { mintDevToken } from '../../src/auth/index.js';
import { call } from '../helpers/admin-http.js';
import {
  externalBackendsConfig,
  reportChildGateways,
  startChildGateway,
  stopChildGateways,
  type ReadyChildGateway,
} from '../helpers/child-gateway.js';
import { identity, PEER_DOMAIN, pkiFile, scratchDir, uniqueBal } from '../helpers/gateway.js';
import { journalEvents } from '../helpers/journal.js';
import { eventually, inboxMessages } from '../helpers/mailbox.js';

/**
 * Issue #7, several nodes: two gateway processes with the same configuration share one Redis, one
 * Dovecot and one spool (shared storage). A message accepted by either is delivered once; a right
 * granted through one is honoured by the other at once; scheduled jobs run once; SIGTERM drains.
 * The two processes are started once for the file (each start costs seconds on a busy machine); the
 * drain test, which stops node A, comes last.
 */

const OWNER = '810000000001';
const DELEGATE = '810000000002';

afterEach((context) => reportChildGateways(context));
afterAll(() => stopChildGateways());

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
    connectionTimeout: 60_000,
    socketTimeout: 60_000,
  });
}

async function twoNodes(): Promise<{ a: ReadyChildGateway; b: ReadyChildGateway; dataDir: string }> {
  const dataDir = scratchDir('two-nodes');
  const config = externalBackendsConfig({
    dataDir,
    prefix: `test:${randomUUID()}:`,
    delivery: { lockSeconds: 2, reconcileSeconds: 2 },
  });
  const a = await startChildGateway({ config, name: 'node-a' });
  const b = await startChildGateway({ config, name: 'node-b' });
  return { a, b, dataDir };
}

describe('two gateway nodes', () => {
  let a: ReadyChildGateway;
  let b: ReadyChildGateway;
  let dataDir: string;
  beforeAll(async () => {
    ({ a, b, dataDir } = await twoNodes());
  });

  it('share rights at once, run scheduled jobs once, and deliver what either accepted once', async () => {
    // Scheduled jobs: the whitelist mirror's start-up refresh ran in one process only.
    const accepted = journalEvents(dataDir).filter((e) => e.event === 'directory.mirror.accepted');
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
    const viaB = nodemailer.createTransport({
      host: '127.0.0.1',
      port: b.ports.submission,
      secure: false,
      requireTLS: true,
      auth: { type: 'OAuth2', user: bal, accessToken: token },
      tls: { ca: pkiFile('ca/root.crt'), servername: 'localhost' },
    });
    const sent = await viaB.sendMail({ from: bal, to: bal, subject: 'delegate via B', text: 'x' });
    viaB.close();
    expect(sent.response).toMatch(/^250 /);

    // Mail accepted by either node lands once.
    const ids: string[] = [];
    for (const [n, node] of [a, b, a, b, a, b].entries()) {
      const messageId = `<multi-${n}-${randomUUID()}@${PEER_DOMAIN}>`;
      const t = peerTransport(node.ports.mx);
      await t.sendMail({
        envelope: { from: `s@${PEER_DOMAIN}`, to: [bal] },
        from: `s@${PEER_DOMAIN}`,
        to: bal,
        subject: `n${n}`,
        messageId,
        text: 'y',
      });
      t.close();
      ids.push(messageId);
    }
    const inbox = await eventually(
      () => inboxMessages(bal),
      (m) => m.length >= ids.length + 1,
    );
    const counts = ids.map((id) => inbox.filter((m) => m.toString('latin1').includes(id)).length);
    expect(counts).toEqual(ids.map(() => 1));
    expect(inbox).toHaveLength(ids.length + 1);
  });

  it('SIGTERM on one node mid-traffic: it drains, and every acknowledged message is delivered once', async () => {
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
    expect((await a.waitExit(60_000)).code).toBe(0);
    const inbox = await eventually(
      () => inboxMessages(bal),
      (m) => m.length >= acked.length,
    );
    const counts = acked.map((id) => inbox.filter((m) => m.toString('latin1').includes(id)).length);
    expect(counts.filter((c) => c !== 1)).toEqual([]);
    expect(acked.length).toBeGreaterThan(15);
  });
});
