import { randomBytes, randomUUID } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/app/index.js';
import type { DestinationState, SpoolEnvelope } from '../../src/delivery/index.js';
import { PEER_DOMAIN, scratchDir, startTestGateway, uniqueBal } from '../helpers/gateway.js';
import { eventually, inboxMessages } from '../helpers/mailbox.js';
import { peerMx } from '../helpers/smtp-clients.js';

/**
 * Upgrade with a backlog: the previous version kept each spool entry in two files,
 * `queue/<id>.eml` (the message) and `queue/<id>.json` (the envelope, the commit marker), and its
 * destination states beside them. A gateway of this version started on such a spool recovers every
 * entry, honours the recorded states, asks the store before delivering again, and removes the old
 * files: each recipient ends with exactly one copy.
 */

const system = { kind: 'system' as const, id: 'test' };
const gateways: Gateway[] = [];
afterAll(async () => {
  for (const gw of gateways) await gw.stop().catch(() => undefined);
});

function spoolId(): string {
  return `${Date.now().toString(36).padStart(9, '0')}${randomBytes(6).toString('hex')}`;
}

/** A message as the previous version spooled it: its Received: header on top, naming the spool id. */
function spooledMessage(id: string, to: string, subject: string): string {
  return [
    `Received: from mx.${PEER_DOMAIN} ([127.0.0.1])`,
    `\tby mx.op.mssante.test (mssgw) with ESMTPS id ${id}`,
    `\tfor <${to}>; Mon, 07 Dec 2026 21:00:00 +0000`,
    `From: <labo@${PEER_DOMAIN}>`,
    `To: <${to}>`,
    `Subject: ${subject}`,
    `Message-ID: <${id}@${PEER_DOMAIN}>`,
    '',
    'Compte rendu de biologie.',
    '',
  ].join('\r\n');
}

function envelopeOf(id: string, size: number, to: readonly string[]): SpoolEnvelope {
  const now = new Date().toISOString();
  return {
    id,
    version: 1,
    receivedAt: now,
    mailFrom: `labo@${PEER_DOMAIN}`,
    channel: 'mx',
    size,
    messageId: `<${id}@${PEER_DOMAIN}>`,
    peer: { address: '127.0.0.1', helo: `mx.${PEER_DOMAIN}` },
    recipients: to.map((address) => ({ address, route: 'local', state: 'pending', attempts: 0 })),
    nextAttemptAt: now,
  };
}

/** Writes an entry exactly as the previous version committed it (message, then envelope). */
function writeOldEntry(dataDir: string, id: string, message: string, to: readonly string[]): void {
  const queue = path.join(dataDir, 'spool', 'queue');
  writeFileSync(path.join(queue, `${id}.eml`), message, { mode: 0o600 });
  const envelope = envelopeOf(id, Buffer.byteLength(message), to);
  writeFileSync(path.join(queue, `${id}.json`), JSON.stringify(envelope), { mode: 0o600 });
}

function subjects(messages: Buffer[]): string[] {
  return messages.map((m) => /^Subject: (.*)$/m.exec(m.toString('latin1'))?.[1]?.trim() ?? '?');
}

describe('spool upgrade: entries of the previous version (two files each)', () => {
  it('are recovered and delivered once each, honouring their recorded states', async () => {
    const dataDir = scratchDir('spool-upgrade');
    const prefix = `test:${randomUUID()}:`;
    const first = await startTestGateway({ dataDir, prefix });
    gateways.push(first);
    const [fresh, partial1, partial2, stored] = ['fresh', 'done', 'left', 'stored'].map((p) => uniqueBal(p));
    for (const address of [fresh!, partial1!, partial2!, stored!])
      await first.registry.create({ address, type: 'PER', owner: '810000000001' }, system);
    // A message the store already holds: the previous version was killed after the store's answer
    // and before removing its entry, which is still in its spool below.
    const sent = await peerMx(first.addresses.mx!.port).sendMail({
      envelope: { from: `labo@${PEER_DOMAIN}`, to: [stored!] },
      raw: `From: <labo@${PEER_DOMAIN}>\r\nTo: <${stored}>\r\nSubject: already stored\r\n\r\nbonjour\r\n`,
    });
    const storedId = /queued as ([0-9a-z]+)$/.exec(sent.response)?.[1];
    expect(storedId).toBeDefined();
    const [inStore] = await eventually(
      () => inboxMessages(stored!),
      (m) => m.length === 1,
    );
    expect(inStore).toBeDefined();
    await first.stop();

    // The spool of the previous version, with: an entry never attempted; an entry of two recipients
    // whose state file says the first was delivered; the entry of the message already stored.
    const freshId = spoolId();
    writeOldEntry(dataDir, freshId, spooledMessage(freshId, fresh!, 'never attempted'), [fresh!]);
    const partialId = spoolId();
    writeOldEntry(dataDir, partialId, spooledMessage(partialId, partial1!, 'half delivered'), [
      partial1!,
      partial2!,
    ]);
    const at = new Date().toISOString();
    const state: DestinationState = {
      version: 1,
      spoolId: partialId,
      destination: 'local',
      recipients: [
        {
          address: partial1!,
          state: 'delivered',
          attempts: 1,
          lastResult: '250 2.0.0 Ok',
          status: '2.0.0',
          finishedAt: at,
        },
        {
          address: partial2!,
          state: 'pending',
          attempts: 1,
          lastResult: '451 4.2.0 over quota',
          status: '4.2.0',
        },
      ],
      attempts: 1,
      lastAttemptAt: at,
      nextAttemptAt: at,
      final: false,
    };
    writeFileSync(path.join(dataDir, 'spool', 'state', `${partialId}~local.json`), JSON.stringify(state));
    const storedText = inStore!.toString('latin1');
    writeOldEntry(dataDir, storedId!, storedText.slice(storedText.indexOf('Received: ')), [stored!]);

    const upgraded = await startTestGateway({ dataDir, prefix });
    gateways.push(upgraded);
    const queue = path.join(dataDir, 'spool', 'queue');
    const left = await eventually(
      () => Promise.resolve(readdirSync(queue)),
      (names) => names.length === 0,
    );
    expect(left, 'entries of the previous version left in the queue').toEqual([]);
    expect(subjects(await inboxMessages(fresh!))).toEqual(['never attempted']);
    expect(subjects(await inboxMessages(partial2!))).toEqual(['half delivered']);
    // Recorded as delivered by the previous version: not sent again.
    expect(await inboxMessages(partial1!)).toEqual([]);
    // Found in the store on recovery: not delivered a second time.
    expect(subjects(await inboxMessages(stored!))).toEqual(['already stored']);
    expect(readdirSync(path.join(dataDir, 'spool', 'state'))).toEqual([]);
    expect(readdirSync(path.join(dataDir, 'spool', 'failed'))).toEqual([]);
  });
});
