import { randomUUID } from 'node:crypto';
import { copyFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { Gateway } from '../../src/app/index.js';
import { mintDevToken } from '../../src/auth/index.js';
import { crlPem } from '../../src/directory/index.js';
import { DEV_PKI_DN, devPkiSettings, readDevPkiManifest } from '../../src/pki/index.js';
import { PEER_DOMAIN, scratchDir, startTestGateway, uniqueBal } from '../helpers/gateway.js';
import { runMssgwInProcess as mssgw } from '../helpers/admin-cli.js';
import { call, expectProblem } from '../helpers/admin-http.js';
import { journalEvents } from '../helpers/journal.js';
import { eventually, inboxMessages } from '../helpers/mailbox.js';
import { devCrl } from '../helpers/national-data.js';
import { type PeerOperator, startPeerOperator } from '../helpers/peer-operator.js';
import { tokenSubmission } from '../helpers/smtp-clients.js';

/**
 * The outbound relay (issue #4) against a second real SMTP server playing another operator, with its
 * own certificate from the development PKI: what it receives, what it is refused, and what comes
 * back to the sender.
 */

const DOCTOR = '810000000001';
const system = { kind: 'system', id: 'test' } as const;
const PATIENT = '185057800608491@patient.mssante.fr';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A whitelist where the peer's DN also serves patient.mssante.fr (Mon espace santé's operator). */
function whitelistWithPatients(): string {
  const file = path.join(scratchDir('wl'), 'whitelist.xml');
  const entry = (domain: string, dn: string) =>
    `<Domaine><Nom>${domain}</Nom><Description>x</Description><DNCertificatOperateur>${dn}</DNCertificatOperateur>` +
    `<ResponsableContact>a@b.fr</ResponsableContact><SupportContact>a@b.fr</SupportContact><DateMAJ>2026-01-01T00:00:00Z</DateMAJ></Domaine>`;
  writeFileSync(
    file,
    `<?xml version="1.0" encoding="UTF-8"?><ListeBlancheMSSante xmlns="https://listeblanche.mssante.fr/schema">` +
      `<DateDeGeneration>${new Date().toISOString()}</DateDeGeneration><ListeDomaines>` +
      entry('op.mssante.test', DEV_PKI_DN.gateway) +
      entry(PEER_DOMAIN, DEV_PKI_DN['peer-trusted']) +
      entry('patient.mssante.fr', DEV_PKI_DN['peer-trusted']) +
      `</ListeDomaines></ListeBlancheMSSante>`,
  );
  return file;
}

async function peer(leaf = 'peer-trusted', dsn = true): Promise<PeerOperator> {
  const p = await startPeerOperator({ leaf, dsn });
  cleanups.push(() => p.stop());
  return p;
}

async function gateway(p: PeerOperator, overrides: Record<string, unknown> = {}): Promise<Gateway> {
  const route = [{ host: '127.0.0.1', port: p.port }];
  const gw = await startTestGateway({
    overrides: {
      whitelistFile: whitelistWithPatients(),
      relay: {
        routes: { [PEER_DOMAIN]: route, 'patient.mssante.fr': route },
        trustRetryAttempts: 2,
        idleSeconds: 1,
        connectTimeoutSeconds: 5,
        commandTimeoutSeconds: 10,
      },
      delivery: { retryInitialSeconds: 0.2, retryMaxSeconds: 1 },
      ...overrides,
    },
  });
  cleanups.push(() => gw.stop());
  return gw;
}

async function sender(
  gw: Gateway,
): Promise<{ address: string; send: (raw: string, to: string[], dsn?: object) => Promise<string> }> {
  const address = uniqueBal('relay');
  await gw.registry.create({ address, type: 'PER', owner: DOCTOR }, system);
  const accessToken = await mintDevToken({ pkiDir: gw.config.pkiDir, subject: DOCTOR, ttlSeconds: 300 });
  const transport = tokenSubmission(gw.addresses.submission!.port, address, accessToken);
  cleanups.push(() => Promise.resolve(transport.close()));
  return {
    address,
    send: async (raw, to, dsn) => {
      const info = await transport.sendMail({
        envelope: { from: address, to },
        raw,
        ...(dsn ? { dsn } : {}),
      });
      return info.response.split(' ').pop()!;
    },
  };
}

function rawMessage(from: string, to: string, body = 'Compte rendu.\r\n.leading dot line\r\n'): string {
  return (
    `From: ${from}\r\nTo: ${to}\r\nSubject: CR ${randomUUID()}\r\nMessage-ID: <${randomUUID()}@op.mssante.test>\r\n` +
    `X-MSS-NIL: LPS-TEST 1.0\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n` +
    `Content-Transfer-Encoding: 8bit\r\n\r\n${body}`
  );
}

/** Delivery status notifications (multipart/report) in a mailbox, once `count` messages are there. */
async function dsnsIn(address: string, count: number, timeoutMs = 60_000): Promise<string[]> {
  const raws = await eventually(
    () => inboxMessages(address),
    (m) => m.length >= count,
    timeoutMs,
  );
  return raws.map((r) => r.toString('latin1')).filter((t) => /multipart\/report/i.test(t));
}

describe('outbound relay to another operator', () => {
  it('delivers byte for byte, presenting our certificate, with the DSN parameters', async () => {
    const p = await peer();
    const gw = await gateway(p);
    const s = await sender(gw);
    const to = `martin.${randomUUID().slice(0, 6)}@${PEER_DOMAIN}`;
    const raw = rawMessage(s.address, to);
    const id = await s.send(raw, [to], { notify: ['failure', 'delay'], ret: 'hdrs', envid: 'env-1' });
    const [got] = await p.received(1);
    expect(got!.to).toEqual([to]);
    expect(got!.from).toBe(s.address);
    expect(got!.clientCn).toBe(/CN=([^,]+)/.exec(DEV_PKI_DN.gateway)![1]); // our gateway leaf
    expect(got!.clientAuthorized).toBe(true);
    // Our Received: header on top, then exactly what the client submitted.
    const text = got!.raw.toString('utf8');
    expect(text.startsWith('Received: ')).toBe(true);
    expect(text.endsWith(raw)).toBe(true);
    expect(got!.mailParams).toMatchObject({ RET: 'HDRS', ENVID: 'env-1' });
    expect(got!.rcptParams[0]).toMatchObject({ NOTIFY: 'FAILURE,DELAY' });
    await eventually(
      () => gw.spool.stats(new Date()),
      (st) => st.messages === 0,
    );
    const delivered = journalEvents(gw.config.dataDir).find(
      (e) => e.event === 'delivery.relay.delivered' && e.spoolId === id,
    );
    expect(delivered).toMatchObject({ recipient: to, remoteHost: '127.0.0.1' });
    expect(String(delivered?.remoteDn)).toContain('CN=mx.peer.mssante.test');
    const metrics = await (await fetch(`http://127.0.0.1:${gw.addresses.metrics!.port}/metrics`)).text();
    expect(metrics).toContain('mssgw_relay_recipients_total{outcome="delivered",patient="false"} 1');
    expect(metrics).toMatch(/mssgw_relay_attempts_total\{outcome="delivered",reason="ok"\} 1/);
  });

  it('routes patient mailboxes like any whitelisted domain and counts them apart', async () => {
    const p = await peer();
    const gw = await gateway(p);
    const s = await sender(gw);
    await s.send(rawMessage(s.address, PATIENT), [PATIENT]);
    const [got] = await p.received(1);
    expect(got!.to).toEqual([PATIENT]);
    const metrics = await eventually(
      async () => (await fetch(`http://127.0.0.1:${gw.addresses.metrics!.port}/metrics`)).text(),
      (m) => m.includes('patient="true"'),
    );
    expect(metrics).toContain('mssgw_relay_recipients_total{outcome="delivered",patient="true"} 1');
  });

  it.each(['peer-unlisted', 'peer-revoked', 'peer-expired', 'peer-foreign'])(
    'sends nothing to a peer presenting %s, and returns a failure DSN with the reason',
    async (leaf) => {
      const p = await peer(leaf);
      const gw = await gateway(p);
      const s = await sender(gw);
      const to = `martin@${PEER_DOMAIN}`;
      const id = await s.send(rawMessage(s.address, to), [to]);
      const [dsn] = await dsnsIn(s.address, 1);
      expect(dsn).toBeDefined();
      const report = (await dsnsIn(s.address, 1))[0]!;
      expect(report).toMatch(/Action: failed/);
      expect(report).toMatch(/Status: 5\.7\.(1|5)/);
      const reason = {
        'peer-unlisted': /not registered for the recipient domain/,
        'peer-revoked': /revoked/,
        'peer-expired': /validity period/,
        'peer-foreign': /does not chain to a trusted/,
      }[leaf]!;
      expect(report).toMatch(reason);
      expect(p.messages).toEqual([]);
      const attempts = journalEvents(gw.config.dataDir).filter(
        (e) => e.spoolId === id && String(e.event).startsWith('delivery.relay.'),
      );
      expect(attempts.map((e) => e.event)).toEqual(['delivery.relay.deferred', 'delivery.relay.failed']);
    },
  );

  it('retries 421 at greeting, 451 after DATA and a drop after DATA, then delivers exactly one copy', async () => {
    const p = await peer();
    const gw = await gateway(p);
    const s = await sender(gw);
    p.greetingRefusals = 1;
    p.faults.push(
      { kind: 'reject-data', code: 451, message: 'Try again later' },
      { kind: 'drop-after-data' },
    );
    const to = `martin@${PEER_DOMAIN}`;
    const raw = rawMessage(s.address, to);
    const id = await s.send(raw, [to]);
    await p.received(1);
    await eventually(
      () => gw.spool.stats(new Date()),
      (st) => st.messages === 0,
    );
    expect(p.messages).toHaveLength(1);
    const events = journalEvents(gw.config.dataDir).filter((e) => e.spoolId === id);
    expect(events.filter((e) => e.event === 'delivery.relay.deferred')).toHaveLength(3);
    expect(events.filter((e) => e.event === 'delivery.relay.delivered')).toHaveLength(1);
    expect(await inboxMessages(s.address)).toEqual([]); // no DSN: it was delivered
  });

  it('carries consecutive messages over one kept connection: the peer sees fewer TLS sessions than messages', async () => {
    const p = await peer();
    const route = [{ host: '127.0.0.1', port: p.port }];
    const gw = await gateway(p, {
      relay: {
        routes: { [PEER_DOMAIN]: route },
        idleSeconds: 60,
        connectTimeoutSeconds: 5,
        commandTimeoutSeconds: 10,
      },
    });
    const s = await sender(gw);
    const count = 8;
    for (let i = 0; i < count; i += 1) {
      const to = `martin${i}@${PEER_DOMAIN}`;
      await s.send(rawMessage(s.address, to), [to]);
    }
    const received = await p.received(count);
    expect(new Set(received.map((m) => m.to[0])).size).toBe(count);
    expect(p.sessions()).toBeLessThan(count);
    expect(new Set(received.map((m) => m.connection)).size).toBe(p.sessions());
    expect(gw.relay.connections().get(PEER_DOMAIN)).toBeGreaterThanOrEqual(1);
  });

  it('sends nothing more over a kept connection once a reloaded CRL revokes the peer: refused afresh, retried, then a DSN', async () => {
    const p = await peer();
    const pkiDir = inject('pkiDir');
    const crlFiles = devPkiSettings(pkiDir).tls.crlFiles;
    const orgCrl = path.join(scratchDir('crl'), 'org.crl');
    copyFileSync(
      crlFiles.find((f) => f.endsWith('org.crl'))!,
      orgCrl,
    );
    const route = [{ host: '127.0.0.1', port: p.port }];
    const gw = await gateway(p, {
      tls: { crlFiles: crlFiles.map((f) => (f.endsWith('org.crl') ? orgCrl : f)) },
      relay: {
        routes: { [PEER_DOMAIN]: route },
        trustRetryAttempts: 2,
        idleSeconds: 600,
        connectTimeoutSeconds: 5,
        commandTimeoutSeconds: 10,
      },
    });
    const s = await sender(gw);
    const to = `martin@${PEER_DOMAIN}`;
    await s.send(rawMessage(s.address, to), [to]);
    await p.received(1);
    expect(gw.relay.connections().get(PEER_DOMAIN)).toBe(1);
    expect(p.sessions()).toBe(1);
    // The authority revokes the peer's certificate; the operator reloads (a mirror refresh does the same).
    const manifest = (await readDevPkiManifest(pkiDir))!;
    const serials = [manifest.leaves['peer-revoked'].serial, manifest.leaves['peer-trusted'].serial];
    writeFileSync(orgCrl, crlPem(await devCrl(pkiDir, 'org', { revokedSerials: serials, crlNumber: 3 })));
    const reload = await call({ url: `http://127.0.0.1:${gw.addresses.admin!.port}` }, 'POST', '/v1/reload');
    expect(reload.status).toBe(200);
    const id = await s.send(rawMessage(s.address, to), [to]);
    const [report] = await dsnsIn(s.address, 1);
    expect(report).toMatch(/Action: failed/);
    expect(report).toMatch(/Status: 5\.7\.5/);
    expect(report).toMatch(/remote certificate revoked/);
    expect(p.messages).toHaveLength(1);
    // Each attempt met a new handshake (the kept connection was closed, not used), refused after it.
    expect(p.sessions()).toBe(3);
    await p.quiet();
    const attempts = journalEvents(gw.config.dataDir).filter(
      (e) => e.spoolId === id && String(e.event).startsWith('delivery.relay.'),
    );
    expect(attempts.map((e) => e.event)).toEqual(['delivery.relay.deferred', 'delivery.relay.failed']);
    expect(String(attempts[0]!.result)).toMatch(/^451 4\.7\.5 remote certificate revoked \(127\.0\.0\.1, /);
    expect(String(attempts[1]!.result)).toMatch(/^554 5\.7\.5 remote certificate revoked/);
  });

  it('retries while the peer refuses connections, then delivers once', async () => {
    const p = await peer();
    const gw = await gateway(p);
    const s = await sender(gw);
    await p.stop();
    const to = `martin@${PEER_DOMAIN}`;
    const id = await s.send(rawMessage(s.address, to), [to]);
    await eventually(
      () => Promise.resolve(journalEvents(gw.config.dataDir)),
      (ev) => ev.filter((e) => e.spoolId === id && e.event === 'delivery.relay.deferred').length >= 2,
    );
    const deferred = journalEvents(gw.config.dataDir).find(
      (e) => e.spoolId === id && e.event === 'delivery.relay.deferred',
    );
    expect(String(deferred?.result)).toMatch(/^451 4\.4\.1 remote MX unreachable/);
    await p.restart();
    await p.received(1);
    await eventually(
      () => gw.spool.stats(new Date()),
      (st) => st.messages === 0,
    );
    expect(p.messages).toHaveLength(1);
  });

  it('delivers to one of two recipients and returns a DSN for the one refused with 550', async () => {
    const p = await peer();
    const gw = await gateway(p);
    const s = await sender(gw);
    const good = `good@${PEER_DOMAIN}`;
    const bad = `bad@${PEER_DOMAIN}`;
    p.refuse.set(bad, { code: 550, message: 'No such mailbox' });
    await s.send(rawMessage(s.address, `${good}, ${bad}`), [good, bad]);
    const [got] = await p.received(1);
    expect(got!.to).toEqual([good]);
    await dsnsIn(s.address, 1);
    const report = (await dsnsIn(s.address, 1))[0]!;
    expect(report).toContain(`Final-Recipient: rfc822; ${bad}`);
    expect(report).not.toContain(`Final-Recipient: rfc822; ${good}`);
    expect(report).toMatch(/Status: 5\.1\.1/);
    expect(report).toMatch(/Diagnostic-Code: smtp; 550 5\.1\.1 No such mailbox/);
    expect(report).toContain('Remote-MTA: dns; 127.0.0.1');
  });

  it('sends one delay notice, then a failure DSN when the message expires', async () => {
    const p = await peer();
    const gw = await gateway(p, {
      delivery: {
        retryInitialSeconds: 0.3,
        retryMaxSeconds: 1,
        delayNoticeHours: 0.0005,
        maxAgeHours: 0.0015,
      },
    });
    const s = await sender(gw);
    await p.stop();
    const to = `martin@${PEER_DOMAIN}`;
    await s.send(rawMessage(s.address, to), [to]);
    const messages = await eventually(
      () => inboxMessages(s.address),
      (m) => m.length >= 2,
      60_000,
    );
    const reports = messages.map((m) => m.toString('latin1'));
    expect(reports.filter((r) => /Action: delayed/.test(r))).toHaveLength(1);
    expect(reports.filter((r) => /Action: failed/.test(r))).toHaveLength(1);
    expect(reports.find((r) => /Action: failed/.test(r))).toMatch(/Status: 5\.4\.7/);
    await eventually(
      () => gw.spool.stats(new Date()),
      (st) => st.messages === 0,
    );
    expect(await inboxMessages(s.address)).toHaveLength(2);
  });

  it('reports success itself when NOTIFY=SUCCESS and the remote lacks DSN; not when it has it', async () => {
    const plain = await peer('peer-trusted', false);
    const gw = await gateway(plain);
    const s = await sender(gw);
    const to = `martin@${PEER_DOMAIN}`;
    await s.send(rawMessage(s.address, to), [to], { notify: ['success'] });
    await plain.received(1);
    expect(plain.messages[0]!.rcptParams[0]).not.toHaveProperty('NOTIFY');
    await dsnsIn(s.address, 1);
    expect((await inboxMessages(s.address))[0]!.toString('latin1')).toMatch(/Action: delivered/);

    const capable = await peer('peer-trusted', true);
    const gw2 = await gateway(capable);
    const s2 = await sender(gw2);
    await s2.send(rawMessage(s2.address, to), [to], { notify: ['success'] });
    await capable.received(1);
    expect(capable.messages[0]!.rcptParams[0]).toMatchObject({ NOTIFY: 'SUCCESS' });
    await eventually(
      () => gw2.spool.stats(new Date()),
      (st) => st.messages === 0,
    );
    expect(await inboxMessages(s2.address)).toEqual([]);
  });

  it('never sends a DSN about a DSN (null sender)', async () => {
    const p = await peer();
    const gw = await gateway(p);
    const s = await sender(gw);
    // The sender's own mail is refused, so a failure DSN is made; it goes to the sender, a local
    // mailbox... unless that DSN fails too: then nothing more. Force it with a DSN for the peer.
    const origin = `origin@${PEER_DOMAIN}`;
    p.refuse.set(origin, { code: 550, message: '5.1.1 gone' });
    const notice = await gw.delivery.inject({
      from: '',
      to: origin,
      route: 'relay',
      raw: Buffer.from(rawMessage('MAILER-DAEMON@mx.op.mssante.test', origin)),
    });
    await eventually(
      () => gw.spool.stats(new Date()),
      (st) => st.messages === 0,
    );
    const events = journalEvents(gw.config.dataDir);
    expect(events.find((e) => e.spoolId === notice.id && e.event === 'delivery.relay.failed')).toBeDefined();
    expect(events.filter((e) => e.event === 'dsn.sent' && e.spoolId === notice.id)).toEqual([]);
    expect(await inboxMessages(s.address)).toEqual([]);
  });
});

describe('queue control', () => {
  it('lists a waiting job, retries it now, and deletes another with a failure DSN', async () => {
    const p = await peer();
    const gw = await gateway(p, { delivery: { retryInitialSeconds: 60, retryMaxSeconds: 60 } });
    const s = await sender(gw);
    await p.stop();
    const to = `martin@${PEER_DOMAIN}`;
    const first = await s.send(rawMessage(s.address, to), [to]);
    const second = await s.send(rawMessage(s.address, to), [to]);
    const jobs = await eventually(
      () => gw.delivery.list(),
      (l) => l.filter((j) => j.state === 'delayed').length === 2,
    );
    const job = jobs.find((j) => j.data.spoolId === first)!;
    expect(job).toMatchObject({ id: `${first}~${PEER_DOMAIN}`, queue: 'relay', state: 'delayed' });
    expect(job.nextAttemptAt).toBeDefined();
    const shown = await gw.delivery.show(job.id);
    expect(shown.progress?.recipients[0]).toMatchObject({ address: to, state: 'pending', attempts: 1 });
    await p.restart();
    await gw.delivery.retry(job.id);
    await p.received(1);
    expect(p.messages[0]!.raw.toString()).toContain('Compte rendu');
    // The operator's view: the CLI over the admin API.
    const admin = { url: `http://127.0.0.1:${gw.addresses.admin!.port}` };
    const secondId = `${second}~${PEER_DOMAIN}`;
    const listed = await mssgw(['--api', admin.url, 'queue', 'list', '--state', 'delayed']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(`${secondId}  delayed  from <${s.address}> to 1 recipient(s)`);
    const shown2 = await mssgw(['--api', admin.url, 'queue', 'show', secondId]);
    expect(shown2.stdout).toContain(`  ${to}  pending, 1 attempt(s): 451 4.4.1 remote MX unreachable`);
    const deleted = await mssgw(['--api', admin.url, 'queue', 'delete', secondId]);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toBe(`deleted ${secondId}; the sender is notified\n`);
    const [dsn] = await dsnsIn(s.address, 1);
    expect(dsn).toMatch(/deleted by the operator/);
    expectProblem(await call(admin, 'GET', `/v1/queue/${secondId}`), 410, 'QUEUE_JOB_FINISHED');
    expectProblem(await call(admin, 'GET', '/v1/queue?state=bogus'), 400, 'REQUEST_INVALID');
    const missing = await mssgw(['--api', admin.url, 'queue', 'retry', 'nope~x']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/no queue job nope~x/);
  });
});
