import { randomUUID } from 'node:crypto';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/app/index.js';
import { mintDevToken } from '../../src/auth/index.js';
import { PEER_DOMAIN, identity, pkiFile, startTestGateway, uniqueBal } from '../helpers/gateway.js';
import { gatewayClient } from '../helpers/imap-clients.js';
import { tokenSubmission } from '../helpers/smtp-clients.js';

/**
 * Issue #11, found by bench/starttls-stall.ts: an SMTP connection upgraded with STARTTLS kept its place
 * under the listener's connection limit after it closed (the accepted socket never reports its own
 * close once TLS took it over), so after `maxConnections` sessions in all the listener refused
 * everyone with `421 4.7.0 Too many connections`. Three times the limit, one after the other, must
 * all be served.
 */
const system = { kind: 'system' as const, id: 'test' };
const LIMIT = 5;
let gw: Gateway;
let bal: string;

beforeAll(async () => {
  gw = await startTestGateway({
    overrides: {
      smtp: { mx: { maxConnections: LIMIT }, submission: { maxConnections: LIMIT } },
      imap: { maxConnections: LIMIT },
      relay: { enabled: false },
    },
  });
  bal = uniqueBal('slots');
  await gw.registry.create({ address: bal, type: 'PER', owner: '810000000001' }, system);
});
afterAll(async () => {
  await gw?.stop();
});

describe('a closed STARTTLS connection frees its place under maxConnections', () => {
  it('IMAP: three times the limit of STARTTLS logins, one after the other, are all served', async () => {
    const accessToken = await mintDevToken({
      pkiDir: gw.config.pkiDir,
      subject: '810000000001',
      ttlSeconds: 600,
    });
    for (let i = 0; i < 3 * LIMIT; i++) {
      const client = await gatewayClient(gw.addresses.imap!.port, bal, accessToken, 'starttls');
      expect(await client.status('INBOX', { messages: true })).toMatchObject({ path: 'INBOX' });
      await client.logout();
    }
  });

  it('MX: three times the limit of sessions, one after the other, are all served', async () => {
    for (let i = 0; i < 3 * LIMIT; i++) {
      const info = await nodemailer
        .createTransport({
          host: '127.0.0.1',
          port: gw.addresses.mx!.port,
          secure: false,
          requireTLS: true,
          name: `mx.${PEER_DOMAIN}`,
          tls: { ...identity('peer-trusted'), ca: pkiFile('ca/root.crt'), servername: 'localhost' },
        })
        .sendMail({
          envelope: { from: `martin@${PEER_DOMAIN}`, to: [bal] },
          raw: `From: <martin@${PEER_DOMAIN}>\r\nTo: <${bal}>\r\nSubject: ${i}\r\nMessage-ID: <${randomUUID()}@${PEER_DOMAIN}>\r\n\r\nok\r\n`,
        });
      expect(info.response).toMatch(/^250 2\.0\.0 /);
    }
  });

  it('submission: three times the limit of sessions, one after the other, are all served', async () => {
    const accessToken = await mintDevToken({
      pkiDir: gw.config.pkiDir,
      subject: '810000000001',
      ttlSeconds: 600,
    });
    for (let i = 0; i < 3 * LIMIT; i++) {
      const info = await tokenSubmission(gw.addresses.submission!.port, bal, accessToken).sendMail({
        envelope: { from: bal, to: [bal] },
        from: bal,
        to: bal,
        subject: `${i}`,
        text: 'ok',
      });
      expect(info.response).toMatch(/^250 2\.0\.0 /);
    }
  });
});
