import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { call } from '../helpers/admin-http.js';
import {
  externalBackendsConfig,
  startChildGateway,
  stopChildGateways,
  type ReadyChildGateway,
} from '../helpers/child-gateway.js';
import { identity, PEER_DOMAIN, pkiFile, scratchDir, uniqueBal } from '../helpers/gateway.js';
import { eventually, inboxMessages } from '../helpers/mailbox.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';

/**
 * Issue #11: a client that goes away during DATA must cost nothing once it is gone. smtp-server's
 * data stream of a closed connection never ends, so the spool write used to wait forever, holding
 * one descriptor and one temporary file per dropped session. Counted in the gateway process itself
 * (`/proc/<pid>/fd`) and in `spool/tmp`, over real TLS sessions.
 */

const SESSIONS = 20;

afterEach((context) => stopChildGateways(context));

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function tmpFiles(dataDir: string): string[] {
  return readdirSync(path.join(dataDir, 'spool', 'tmp'));
}

function rawMessage(to: string, body: string): string {
  return (
    `From: <sender@${PEER_DOMAIN}>\r\nTo: <${to}>\r\nSubject: abort\r\n` +
    `Message-ID: <${randomUUID()}@${PEER_DOMAIN}>\r\n\r\n${body}\r\n`
  );
}

/** A TLS session with the peer's certificate, at the point where the message body is expected. */
async function inData(gw: ReadyChildGateway, to: string): Promise<SmtpTranscript> {
  const { client } = await SmtpTranscript.connect(gw.ports.mx);
  await client.command(`EHLO mx.${PEER_DOMAIN}`);
  await client.startTls({ ca: pkiFile('ca/root.crt'), ...identity('peer-trusted') });
  await client.command(`EHLO mx.${PEER_DOMAIN}`);
  expect((await client.command(`MAIL FROM:<sender@${PEER_DOMAIN}>`)).code).toBe(250);
  expect((await client.command(`RCPT TO:<${to}>`)).code).toBe(250);
  expect((await client.command('DATA')).code).toBe(354);
  return client;
}

describe('a session dropped during DATA', () => {
  it('releases its descriptor and its temporary spool file at once', async (context) => {
    const dataDir = scratchDir('abort');
    const gw = await startChildGateway({
      config: externalBackendsConfig({ dataDir, prefix: `test:${randomUUID()}:` }),
      name: 'abort',
    });
    const bal = uniqueBal('abort');
    const created = await call({ url: `http://127.0.0.1:${gw.ports.admin}` }, 'POST', '/v1/bals', {
      json: { address: bal, type: 'PER', owner: '810000000001' },
    });
    expect(created.status).toBe(201);

    // One complete message first: every lazily opened connection (Redis, store) is open.
    const warm = await inData(gw, bal);
    warm.write(`${rawMessage(bal, 'warm-up')}.\r\n`);
    expect((await warm.read(30_000)).code).toBe(250);
    await warm.quit();
    await eventually(
      () => inboxMessages(bal),
      (m) => m.length === 1,
    );
    const baseline = await eventually(
      () => Promise.resolve(openFds(gw.pid)),
      () => true,
    );

    // Twenty sessions stop in the middle of the body, their spool files open: each has sent more
    // than the spool holds in memory (a smaller message is not on disk before its commit).
    const clients = await Promise.all(Array.from({ length: SESSIONS }, () => inData(gw, bal)));
    const line = `${'x'.repeat(998)}\r\n`;
    for (const c of clients) c.write(rawMessage(bal, line.repeat(256)).slice(0, 200_000));
    const writing = await eventually(
      () => Promise.resolve(tmpFiles(dataDir).length),
      (n) => n === SESSIONS,
    );
    expect(writing, 'a spool file per session in DATA').toBe(SESSIONS);
    const during = openFds(gw.pid);
    expect(during).toBeGreaterThanOrEqual(baseline + SESSIONS);

    for (const c of clients) c.destroy();
    const left = await eventually(
      () => Promise.resolve(tmpFiles(dataDir)),
      (files) => files.length === 0,
      10_000,
    );
    expect(left, 'temporary spool files left by dropped sessions').toEqual([]);
    // Other descriptors come and go (the store's health probe); the count returns to the baseline.
    const after = await eventually(
      () => Promise.resolve(openFds(gw.pid)),
      (n) => n <= baseline,
      10_000,
    );
    expect(after, `descriptors: ${baseline} before, ${during} during, ${after} after`).toBeLessThanOrEqual(
      baseline,
    );
    expect(readdirSync(path.join(dataDir, 'spool', 'queue'))).toEqual([]);
    expect(await inboxMessages(bal)).toHaveLength(1);
    await context.annotate(
      `descriptors: ${baseline} before, ${during} with ${SESSIONS} in DATA, ${after} after`,
    );

    // The listener still works.
    const next = await inData(gw, bal);
    next.write(`${rawMessage(bal, 'after')}.\r\n`);
    expect((await next.read(30_000)).code).toBe(250);
    await next.quit();
  });
});
