import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { expect } from 'vitest';
import type { Gateway } from '../../src/app/index.js';
import { keySpace } from './admin-harness.js';
import { call } from './admin-http.js';
import { pkiFile, startTestGateway, uniqueBal } from './gateway.js';

/** National ids for the secret tests: a structure (ORG) and a person (PER). */
export const STRUCTURE = '41690000001';
export const PERSON = '810001234567';

/**
 * A gateway where ORG mailboxes may have a secret (PLAIN/LOGIN). The per-source failure limit is
 * raised so that the refusals one test provokes on purpose cannot lock out the next test's logins.
 */
export function startSecretGateway(): Promise<Gateway> {
  return startTestGateway({
    overrides: { auth: { passwordTypes: ['ORG'], maxFailuresPerSource: 1000 } },
  });
}

/** The gateway's admin API, for `call`. */
export function adminOf(gw: Gateway): { url: string } {
  return { url: `http://127.0.0.1:${gw.addresses.admin!.port}` };
}

/** Creates a mailbox over the admin API and returns its address. */
export async function createMailbox(gw: Gateway, type: 'ORG' | 'PER', label: string): Promise<string> {
  const address = uniqueBal(label);
  const owner = type === 'PER' ? PERSON : STRUCTURE;
  const answer = await call(adminOf(gw), 'POST', '/v1/bals', { json: { address, type, owner } });
  expect(answer.status).toBe(201);
  return address;
}

export function secretPath(address: string): string {
  return `/v1/bals/${encodeURIComponent(address)}/secret`;
}

/** Every key of the gateway's registry and secrets: compare before and after a refused request. */
export function gatewayKeys(gw: Gateway): Promise<Record<string, unknown>> {
  return keySpace(gw.backends.redis, gw.config.redis.prefix);
}

/** The gateway's audit journal as written on disk, every file, raw. */
export function journalText(gw: Gateway): string {
  const dir = path.join(gw.config.dataDir, 'journal');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .map((f) => readFileSync(path.join(dir, f), 'utf8'))
    .join('');
}

/** nodemailer on submission (STARTTLS) with a mailbox and its secret: AUTH PLAIN. */
export function secretTransport(gw: Gateway, user: string, pass: string) {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port: gw.addresses.submission!.port,
    secure: false,
    requireTLS: true,
    auth: { user, pass },
    tls: { ca: pkiFile('ca/root.crt'), servername: 'localhost' },
  });
}

/**
 * imapflow through the gateway (implicit TLS) with a mailbox and its secret: AUTHENTICATE PLAIN
 * with the mailbox as authzid, or the LOGIN command.
 */
export async function secretImapClient(
  gw: Gateway,
  user: string,
  pass: string,
  method: 'PLAIN' | 'LOGIN' = 'PLAIN',
): Promise<ImapFlow> {
  const client = new ImapFlow({
    host: '127.0.0.1',
    port: gw.addresses.imapTls!.port,
    secure: true,
    tls: { ca: pkiFile('ca/root.crt'), servername: 'localhost' },
    auth: method === 'PLAIN' ? { user, pass, authzid: user } : { user, pass, loginMethod: 'LOGIN' },
    logger: false,
    disableAutoIdle: true,
  });
  client.on('error', () => {});
  await client.connect();
  return client;
}
