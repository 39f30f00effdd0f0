import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/app/index.js';
import type { DestinationState, SpoolEnvelope } from '../../src/delivery/index.js';
import { createLogger } from '../../src/observability/index.js';
import { openMailboxSession, startEmbeddedDovecot } from '../../src/store/index.js';
import {
  identity,
  PEER_DOMAIN,
  pkiFile,
  scratchDir,
  startTestGateway,
  uniqueBal,
} from '../helpers/gateway.js';
import { journalEvents } from '../helpers/journal.js';
import { eventually, inboxMessages } from '../helpers/mailbox.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';
import { peerMx } from '../helpers/smtp-clients.js';

const system = { kind: 'system' as const, id: 'test' };

function peerTransport(port: number) {
  return peerMx(port);
}

/** A message as an LPS would write it: X-MSS-* headers, 8-bit text, a dot line, a long line. */
function rawMessage(to: string, messageId: string, extra = ''): Buffer {
  return Buffer.from(
    [
      `From: Dr Martin <martin@${PEER_DOMAIN}>`,
      `To: <${to}>`,
      `Subject: XDM/1.0/DDM+Compte rendu`,
      `Message-ID: <${messageId}>`,
      'Date: Tue, 24 Nov 2026 09:00:00 +0100',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      'X-MSS-CODECDA: 11488-4,34133-9',
      'X-MSS-INS: O',
      'X-MSS-NIL: LPS-EXEMPLE 4.2',
      '',
      'Résultats joints. Cordialement — Dr Martin',
      '.a line that starts with a dot',
      'x'.repeat(1500),
      extra,
      '',
    ].join('\r\n'),
    'utf8',
  );
}

/** The stored message minus what the store (Return-Path) and we (Received) put on top. */
function withoutTrace(stored: Buffer): { received: string; body: Buffer } {
  const text = stored.toString('latin1');
  const afterReturnPath = text.replace(/^Return-Path: [^\r\n]*\r\n/, '');
  const m = /^Received: (?:[^\r\n]*\r\n[ \t])*[^\r\n]*\r\n/.exec(afterReturnPath);
  if (!m) throw new Error('no Received header on top');
  return { received: m[0], body: Buffer.from(afterReturnPath.slice(m[0].length), 'latin1') };
}

describe('MX delivery into the store', () => {
  let gw: Gateway;
  beforeAll(async () => {
    gw = await startTestGateway({ overrides: { smtp: { maxMessageBytes: 64 * 1024 } } });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it("lands a trusted peer's message byte for byte, with its X-MSS headers and our Received header", async () => {
    const bal = uniqueBal('dupont');
    await gw.registry.create({ address: bal, type: 'PER', owner: '810000000001' }, system);
    const id = `${randomUUID()}@${PEER_DOMAIN}`;
    const raw = rawMessage(bal, id);
    const info = await peerTransport(gw.addresses.mx!.port).sendMail({
      envelope: { from: `martin@${PEER_DOMAIN}`, to: [bal] },
      raw,
    });
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as [0-9a-z]+$/);
    const messages = await eventually(
      () => inboxMessages(bal),
      (m) => m.length === 1,
    );
    expect(messages).toHaveLength(1);
    const { received, body } = withoutTrace(messages[0]!);
    expect(body.equals(raw)).toBe(true);
    expect(received).toMatch(/^Received: from mx\.peer\.mssante\.test \(\[127\.0\.0\.1\]\)/);
    expect(received).toMatch(/using TLSv1\.[23] with cipher/);
    // As presented (RFC 4514: CN first, C last), not in the sorted form DNs are compared by.
    expect(received).toMatch(/\(peer certificate CN=mx\.peer\.mssante\.test,OU=[^\r\n]*,C=FR\)/);
    expect(received).toMatch(new RegExp(`for <${bal.replace(/\./g, '\\.')}>`));
    // The journal tells the whole story, and never the body.
    const journal = readdirSync(path.join(gw.config.dataDir, 'journal'))
      .map((f) => readFileSync(path.join(gw.config.dataDir, 'journal', f), 'utf8'))
      .join('');
    expect(journal).toContain(`"messageId":"<${id}>"`);
    expect(journal).toMatch(/"event":"delivery\.local\.delivered"/);
    expect(journal).not.toContain('Résultats');
    // The spool entry goes once the store has the message: just after it shows in the INBOX.
    const queue = () => Promise.resolve(readdirSync(path.join(gw.config.dataDir, 'spool', 'queue')));
    expect(await eventually(queue, (q) => q.length === 0)).toEqual([]);
  });

  it('delivers one copy to each of several recipients', async () => {
    const a = uniqueBal('a');
    const b = uniqueBal('b');
    for (const address of [a, b])
      await gw.registry.create({ address, type: 'ORG', owner: '41690000001' }, system);
    const raw = rawMessage(a, `${randomUUID()}@${PEER_DOMAIN}`);
    await peerTransport(gw.addresses.mx!.port).sendMail({
      envelope: { from: `martin@${PEER_DOMAIN}`, to: [a, b] },
      raw,
    });
    for (const address of [a, b]) {
      const m = await eventually(
        () => inboxMessages(address),
        (x) => x.length === 1,
      );
      expect(m).toHaveLength(1);
      expect(withoutTrace(m[0]!).body.equals(raw)).toBe(true);
    }
  });

  it('refuses an oversized message with 552 5.3.4 and keeps nothing', async () => {
    const bal = uniqueBal('big');
    await gw.registry.create({ address: bal, type: 'PER', owner: '810000000001' }, system);
    const { client } = await SmtpTranscript.connect(gw.addresses.mx!.port);
    const ehlo = await client.command('EHLO mx.peer.mssante.test');
    expect(ehlo.lines).toContain('SIZE 65536');
    await client.startTls({ ca: pkiFile('ca/root.crt'), ...identity('peer-trusted') });
    await client.command('EHLO mx.peer.mssante.test');
    // Declared too large: refused at MAIL (RFC 1870).
    expect((await client.command(`MAIL FROM:<martin@${PEER_DOMAIN}> SIZE=70000`)).raw).toMatch(
      /^552 5\.3\.4 /,
    );
    // Undeclared and too large: refused after DATA.
    expect((await client.command(`MAIL FROM:<martin@${PEER_DOMAIN}>`)).code).toBe(250);
    expect((await client.command(`RCPT TO:<${bal}>`)).code).toBe(250);
    const reply = await client.data(rawMessage(bal, `${randomUUID()}@x`, 'y'.repeat(70_000)));
    expect(reply.raw).toMatch(/^552 5\.3\.4 /);
    await client.quit();
    expect(readdirSync(path.join(gw.config.dataDir, 'spool', 'queue'))).toEqual([]);
    expect(readdirSync(path.join(gw.config.dataDir, 'spool', 'tmp'))).toEqual([]);
    expect(await inboxMessages(bal)).toEqual([]);
  });

  it('keeps DSN parameters (RFC 3461) with the spooled message', async () => {
    const bal = uniqueBal('dsn');
    await gw.registry.create({ address: bal, type: 'PER', owner: '810000000001' }, system);
    const { client } = await SmtpTranscript.connect(gw.addresses.mx!.port);
    await client.command('EHLO mx.peer.mssante.test');
    await client.startTls({ ca: pkiFile('ca/root.crt'), ...identity('peer-trusted') });
    const ehlo = await client.command('EHLO mx.peer.mssante.test');
    expect(ehlo.lines).toEqual(expect.arrayContaining(['DSN', 'ENHANCEDSTATUSCODES', 'PIPELINING']));
    expect((await client.command(`MAIL FROM:<martin@${PEER_DOMAIN}> RET=HDRS ENVID=abc123`)).code).toBe(250);
    expect((await client.command(`RCPT TO:<${bal}> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;${bal}`)).code).toBe(
      250,
    );
    // This message's settlement, not a late one of an earlier test's message on the same gateway.
    const settled = new Promise<[SpoolEnvelope, DestinationState[]]>((resolve) => {
      const onSettled = (e: SpoolEnvelope, s: DestinationState[]) => {
        if (!e.recipients.some((r) => r.address === bal)) return;
        gw.delivery.off('settled', onSettled);
        resolve([e, s]);
      };
      gw.delivery.on('settled', onSettled);
    });
    expect((await client.data(rawMessage(bal, `${randomUUID()}@x`))).code).toBe(250);
    await client.quit();
    const [env, states] = await settled;
    expect(env.dsn).toEqual({ ret: 'HDRS', envid: 'abc123' });
    expect(env.recipients[0]).toMatchObject({
      address: bal,
      dsn: { notify: ['SUCCESS', 'FAILURE'], orcpt: `rfc822;${bal}` },
    });
    expect(states[0]?.recipients[0]).toMatchObject({ address: bal, state: 'delivered' });
    // NOTIFY=SUCCESS and our store is the final MTA: a success DSN goes back to the sender.
    expect(journalEvents(gw.config.dataDir)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ event: 'dsn.sent', action: 'delivered', spoolId: env.id }),
      ]),
    );
  });

  it('exposes metrics and health', async () => {
    const base = `http://127.0.0.1:${gw.addresses.metrics!.port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      status: 'ready',
      checks: { redis: true, store: true, smtp: true, submission: true, imap: true },
    });
    const text = await (await fetch(`${base}/metrics`)).text();
    for (const name of [
      'mssgw_smtp_connections_total{listener="mx"}',
      'mssgw_smtp_commands_total{listener="mx",command="DATA",outcome="accepted"}',
      'mssgw_smtp_commands_total{listener="mx",command="DATA",outcome="too_large"}',
      'mssgw_delivery_local_attempts_total{outcome="delivered"}',
      'mssgw_delivery_local_latency_seconds_bucket',
      'mssgw_spool_messages ',
      'mssgw_redis_up 1',
      'mssgw_store_up{service="lmtp"} 1',
      'mssgw_whitelist_entries{kind="domains"} 2',
      'mssgw_whitelist_entries{kind="rejected"} 0',
      'mssgw_registry_bals{type="PER",status="active"}',
      'mssgw_tls_certificate_expiry_seconds',
    ]) {
      expect(text).toContain(name);
    }
    // Queues are per node (node.id, the host name by default).
    expect(text).toMatch(/^mssgw_queue_jobs\{queue="relay",node="[^"]+",state="waiting"\} \d+$/m);
    expect(text).toMatch(/^mssgw_node_last_seen_timestamp_seconds\{node="[^"]+"\} \d/m);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });
});

describe('store unavailable', () => {
  it('keeps an accepted message spooled while Dovecot is down and delivers it when it returns', async () => {
    const storeDir = scratchDir('own-store');
    const logger = createLogger({ level: 'silent' });
    let dovecot = await startEmbeddedDovecot({ dataDir: storeDir, logger });
    const gw2 = await startTestGateway({
      overrides: { store: { imap: dovecot.imap, lmtp: dovecot.lmtp, masterUser: dovecot.masterUser } },
      masterPassword: dovecot.masterPassword,
    });
    const dataDir = gw2.config.dataDir;
    try {
      const bal = uniqueBal('later');
      await gw2.registry.create({ address: bal, type: 'PER', owner: '810000000001' }, system);
      await dovecot.stop();
      const deferred = new Promise<[SpoolEnvelope, DestinationState]>((resolve) =>
        gw2.delivery.once('deferred', (e: SpoolEnvelope, s: DestinationState) => resolve([e, s])),
      );
      const raw = rawMessage(bal, `${randomUUID()}@${PEER_DOMAIN}`);
      const info = await peerTransport(gw2.addresses.mx!.port).sendMail({
        envelope: { from: `martin@${PEER_DOMAIN}`, to: [bal] },
        raw,
      });
      expect(info.response).toMatch(/^250 /);
      const [env, state] = await deferred;
      expect(state.recipients[0]).toMatchObject({ state: 'pending', attempts: 1 });
      expect(readdirSync(path.join(dataDir, 'spool', 'queue'))).toEqual([`${env.id}.entry`]);
      const settled = new Promise<DestinationState[]>((resolve) =>
        gw2.delivery.once('settled', (_e: SpoolEnvelope, s: DestinationState[]) => resolve(s)),
      );
      dovecot = await startEmbeddedDovecot({ dataDir: storeDir, logger });
      const done = await settled;
      expect(done[0]?.recipients[0]?.state).toBe('delivered');
      const client = await openMailboxSession(
        dovecot.imap,
        { user: dovecot.masterUser, password: dovecot.masterPassword },
        bal,
      );
      const status = await client.status('INBOX', { messages: true });
      await client.logout();
      expect(status !== false && status.messages).toBe(1);
      expect(readdirSync(path.join(dataDir, 'spool', 'queue'))).toEqual([]);
    } finally {
      await gw2.stop();
      await dovecot.stop();
    }
  });
});
