import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { balPath, call } from '../helpers/admin-http.js';
import {
  embeddedProcessesOf,
  launchChildGateway,
  startChildGateway,
  stopChildGateways,
  type ReadyChildGateway,
} from '../helpers/child-gateway.js';
import { PEER_DOMAIN, scratchDir, uniqueBal } from '../helpers/gateway.js';
import { eventually } from '../helpers/mailbox.js';
import { journalEvents } from '../helpers/journal.js';
import { devPkiSettings } from '../../src/pki/index.js';

/**
 * ARCHITECTURE.md §7, embedded default: with no Redis URL and no store endpoints the gateway starts
 * and supervises its own Redis and Dovecot under the data directory, and (development mode) makes its
 * own development PKI when the PKI folder is empty. This drives `src/main.ts` as an operator would.
 */

afterEach((context) => stopChildGateways(context));

/** Settings with no `redis.url` and no `store.*` endpoints, the PKI in a folder the gateway fills. */
function embeddedConfig(dataDir: string, pkiDir: string): Record<string, unknown> {
  return {
    dataDir,
    ...devPkiSettings(pkiDir),
    smtp: {
      hostname: 'mx.op.mssante.test',
      mx: { host: '127.0.0.1', port: 0 },
      submission: { host: '127.0.0.1', port: 0, tlsPort: 0 },
    },
    imap: { host: '127.0.0.1', port: 0, tlsPort: 0 },
    delivery: { retryInitialSeconds: 0.2, retryMaxSeconds: 1 },
    metrics: { port: 0 },
    admin: { port: 0 },
    log: { level: 'info' },
  };
}

async function get(port: number, urlPath: string): Promise<{ status: number; text: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${urlPath}`);
  return { status: response.status, text: await response.text() };
}

async function stopWithSigterm(gw: ReadyChildGateway, dataDir: string): Promise<number> {
  const started = Date.now();
  gw.kill('SIGTERM');
  expect(await gw.waitExit(60_000), gw.tail()).toEqual({ code: 0, signal: null });
  expect(gw.events().some((e) => e.event === 'gateway.stopped')).toBe(true);
  expect(await embeddedProcessesOf(dataDir), 'redis-server or dovecot left running').toEqual([]);
  return Date.now() - started;
}

describe('embedded default: the gateway runs its own Redis, Dovecot and development PKI', () => {
  it('serves a trusted peer end to end, stops cleanly on SIGTERM and keeps its registry', async (context) => {
    // Not created beforehand: the gateway makes it, and makes it searchable for Dovecot's users.
    const dataDir = path.join(scratchDir('embedded'), 'data');
    const pkiDir = path.join(scratchDir('embedded-pki'), 'pki');
    const config = embeddedConfig(dataDir, pkiDir);

    let started = Date.now();
    const gw = await startChildGateway({ config, name: 'embedded' });
    const firstStartMs = Date.now() - started;
    expect(gw.ready).toMatchObject({ mode: 'development', embedded: { redis: true, store: true } });
    expect(gw.events().some((e) => e.event === 'pki.dev.generated' && e.dir === pkiDir)).toBe(true);
    expect(existsSync(path.join(pkiDir, 'peer-trusted.key'))).toBe(true);
    expect((await embeddedProcessesOf(dataDir)).length).toBeGreaterThanOrEqual(2);

    expect(await get(gw.ports.metrics, '/healthz')).toMatchObject({ status: 200 });
    // The store health monitor probes Dovecot right after the start: ready once it has answered.
    const ready = await eventually(
      () => get(gw.ports.metrics, '/readyz'),
      (r) => r.status === 200,
    );
    expect(ready.status, ready.text).toBe(200);
    expect(JSON.parse(ready.text)).toEqual({
      status: 'ready',
      checks: { redis: true, store: true, smtp: true, submission: true, imap: true },
    });

    const admin = { url: `http://127.0.0.1:${gw.ports.admin}` };
    const bal = uniqueBal('embedded');
    const created = await call(admin, 'POST', '/v1/bals', {
      json: { address: bal, type: 'PER', owner: '810000000001' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);

    // The peer holds a certificate of the PKI the gateway just generated.
    const pem = (name: string) => readFileSync(path.join(pkiDir, name), 'utf8');
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: gw.ports.mx,
      secure: false,
      requireTLS: true,
      tls: {
        key: pem('peer-trusted.key'),
        cert: pem('peer-trusted.chain.pem'),
        ca: pem('ca/root.crt'),
        servername: 'localhost',
      },
      name: `mx.${PEER_DOMAIN}`,
    });
    const messageId = `<embedded-${Date.now()}@${PEER_DOMAIN}>`;
    const info = await transport.sendMail({
      from: `sender@${PEER_DOMAIN}`,
      to: bal,
      subject: 'embedded default',
      messageId,
      headers: { 'X-MSS-NIL': 'LPS-EMBEDDED-TEST 1.0' },
      text: 'hello from a trusted operator\n',
    });
    transport.close();
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as [0-9a-z]+$/);

    const delivered = await eventually(
      () => Promise.resolve(journalEvents(dataDir)),
      (events) => events.some((e) => e.event === 'delivery.local.delivered' && e.messageId === messageId),
    );
    expect(
      delivered.find((e) => e.event === 'delivery.local.delivered' && e.messageId === messageId),
    ).toMatchObject({ recipient: bal, result: expect.stringMatching(/^250 /) as unknown });

    const metrics = await get(gw.ports.metrics, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/^mssgw_smtp_connections_total\{listener="mx"\} [1-9]/m);
    expect(metrics.text).toMatch(/^mssgw_spool_messages 0$/m);
    expect(metrics.text).toMatch(/^mssgw_redis_up 1$/m);
    expect(metrics.text).toMatch(/^mssgw_store_up\{service="lmtp"\} 1$/m);
    expect(metrics.text).toMatch(/^mssgw_store_up\{service="imap"\} 1$/m);

    const stopMs = await stopWithSigterm(gw, dataDir);

    // Same data directory: the registry comes back from Redis' append-only file, the PKI is reused.
    started = Date.now();
    const again = await startChildGateway({ config, name: 'embedded-restarted' });
    const secondStartMs = Date.now() - started;
    expect(again.events().some((e) => e.event === 'pki.dev.generated')).toBe(false);
    const kept = await call({ url: `http://127.0.0.1:${again.ports.admin}` }, 'GET', balPath(bal));
    expect(kept.status, JSON.stringify(kept.body)).toBe(200);
    expect(kept.body).toMatchObject({ address: bal, type: 'PER', status: 'active' });

    // A gateway killed outright leaves its Redis and Dovecot running; the next start takes them over.
    again.kill('SIGKILL');
    expect((await again.waitExit()).signal).toBe('SIGKILL');
    expect((await embeddedProcessesOf(dataDir)).length).toBeGreaterThanOrEqual(2);
    started = Date.now();
    const third = await startChildGateway({ config, name: 'embedded-after-kill' });
    const afterKillStartMs = Date.now() - started;
    const stillKept = await call({ url: `http://127.0.0.1:${third.ports.admin}` }, 'GET', balPath(bal));
    expect(stillKept.status, JSON.stringify(stillKept.body)).toBe(200);
    await stopWithSigterm(third, dataDir);
    await context.annotate(
      `first start (PKI generated) ${firstStartMs} ms, SIGTERM to exit ${stopMs} ms, ` +
        `restart ${secondStartMs} ms, start after SIGKILL ${afterKillStartMs} ms`,
    );
  });

  it('SIGTERM during start-up stops what was already started (no orphaned Redis or Dovecot)', async () => {
    const dataDir = scratchDir('embedded-early-term');
    const gw = launchChildGateway({ config: embeddedConfig(dataDir, inject('pkiDir')), name: 'early-term' });
    // Redis is up and Dovecot is starting: the gateway is not ready yet.
    await gw.waitForEvent((e) => e.event === 'redis.started', 90_000);
    expect(gw.events().some((e) => e.event === 'gateway.ready')).toBe(false);
    gw.kill('SIGTERM');
    const exit = await gw.waitExit(60_000);
    const left = await embeddedProcessesOf(dataDir);
    expect(left, `processes of ${dataDir} left running after SIGTERM during start-up`).toEqual([]);
    expect(exit, gw.tail()).toEqual({ code: 0, signal: null });
  });

  it('refuses an invalid configuration with exit 78, every bad key listed, nothing started', async () => {
    const parent = scratchDir('embedded-invalid');
    const dataDir = path.join(parent, 'data');
    const pkiDir = path.join(parent, 'pki');
    const base = embeddedConfig(dataDir, pkiDir);
    const config = {
      ...base,
      smtp: { hostname: 'mx.op.mssante.test', mx: { host: '127.0.0.1', port: 'x', portt: 2525 } },
    };
    const gw = launchChildGateway({ config, env: { MSSGW_LOG__LEVEL: 'loud' }, name: 'invalid' });
    expect(await gw.waitExit(60_000), gw.tail()).toEqual({ code: 78, signal: null });
    const stderr = gw.stderrLines.join('\n');
    expect(stderr).toMatch(/^mssgw: invalid configuration \(3 problems\):$/m);
    const source = `[${gw.configFile}]`;
    const lines = stderr.split('\n');
    expect(
      lines.some((l) => l.startsWith('  - smtp.mx.port: ') && l.endsWith(source)),
      stderr,
    ).toBe(true);
    expect(lines).toContain(`  - smtp.mx.portt: unknown setting ${source}`);
    expect(stderr).toMatch(/^ {2}- log\.level: .+ \[MSSGW_LOG__LEVEL\]$/m);
    // Refused before anything started: no log event, no data directory, no PKI, no services.
    expect(gw.events()).toEqual([]);
    expect(existsSync(dataDir)).toBe(false);
    expect(existsSync(pkiDir)).toBe(false);
    expect(await embeddedProcessesOf(dataDir)).toEqual([]);
  });
});
