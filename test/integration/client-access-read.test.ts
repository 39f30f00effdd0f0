import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/app/index.js';
import { mintDevToken } from '../../src/auth/index.js';
import { deliverLmtp } from '../../src/store/index.js';
import { startTestGateway, uniqueBal } from '../helpers/gateway.js';
import { gatewayClient } from '../helpers/imap-clients.js';
import { journalEvents } from '../helpers/journal.js';
import { sharedStore } from '../helpers/store-mailbox.js';

/**
 * Reading through the IMAP front end with each kind of right (client-access issue): a delegate reads
 * the doctor's INBOX until revoked; members of an organisational mailbox read it, others cannot; each
 * login records the mailbox's activity and is journaled with both identities.
 */
const system = { kind: 'system' as const, id: 'test' };
const DOCTOR = '810000000101';
const SECRETARY = '810000000202';
const MEMBER_A = '810000000303';
const MEMBER_B = '810000000404';
const OUTSIDER = '810000000505';

let gw: Gateway;
const token = (subject: string) => mintDevToken({ pkiDir: gw.config.pkiDir, subject, ttlSeconds: 300 });

beforeAll(async () => {
  gw = await startTestGateway();
});
afterAll(async () => {
  await gw?.stop();
});

async function deliverOne(to: string): Promise<string> {
  const subject = `CR ${randomUUID()}`;
  const raw = Buffer.from(
    `From: <labo@peer.mssante.test>\r\nTo: <${to}>\r\nSubject: ${subject}\r\nX-MSS-NIL: T\r\n\r\nCompte rendu.\r\n`,
  );
  const [result] = await deliverLmtp(sharedStore().lmtp, { from: 'labo@peer.mssante.test', to: [to] }, raw);
  expect(result?.outcome).toBe('delivered');
  return subject;
}

/** Logs in through the gateway as `bal` with `person`'s token; the INBOX subjects, or the failure. */
async function readInbox(bal: string, person: string): Promise<string[]> {
  const client = await gatewayClient(gw.addresses.imapTls!.port, bal, await token(person), 'implicit');
  try {
    const lock = await client.getMailboxLock('INBOX');
    try {
      const subjects: string[] = [];
      for await (const m of client.fetch('1:*', { envelope: true })) subjects.push(m.envelope?.subject ?? '');
      return subjects;
    } finally {
      lock.release();
    }
  } finally {
    await client.logout();
  }
}

describe('reading through the IMAP front end with each right', () => {
  it("a delegate reads the doctor's INBOX until the delegation is revoked", async () => {
    const doctor = uniqueBal('doctor');
    await gw.registry.create({ address: doctor, type: 'PER', owner: DOCTOR }, system);
    const subject = await deliverOne(doctor);
    await gw.registry.grant(doctor, { right: 'delegate', person: SECRETARY, scopes: ['read'] }, system);

    expect(await readInbox(doctor, DOCTOR)).toEqual([subject]);
    expect(await readInbox(doctor, SECRETARY)).toEqual([subject]);
    const activity = await gw.registry.activity(doctor);
    expect(activity.channels.imap).toBeDefined();
    const login = journalEvents(gw.config.dataDir).find(
      (e) => e.event === 'auth.succeeded' && e.bal === doctor && e.right === 'delegate',
    );
    expect(JSON.stringify(login)).toContain(SECRETARY);

    await gw.registry.revoke(doctor, { person: SECRETARY }, system);
    await expect(readInbox(doctor, SECRETARY)).rejects.toMatchObject({
      authenticationFailed: true,
      serverResponseCode: 'AUTHORIZATIONFAILED',
    });
    expect(await readInbox(doctor, DOCTOR)).toEqual([subject]);
  });

  it('members of an organisational mailbox read it; a non-member cannot', async () => {
    const team = uniqueBal('secretariat');
    await gw.registry.create({ address: team, type: 'ORG', owner: '41690000001' }, system);
    const subject = await deliverOne(team);
    for (const person of [MEMBER_A, MEMBER_B])
      await gw.registry.grant(team, { right: 'member', person }, system);
    expect(await readInbox(team, MEMBER_A)).toEqual([subject]);
    expect(await readInbox(team, MEMBER_B)).toEqual([subject]);
    await expect(readInbox(team, OUTSIDER)).rejects.toMatchObject({
      authenticationFailed: true,
      serverResponseCode: 'AUTHORIZATIONFAILED',
    });
    const listing = await gw.registry.balsForPerson(MEMBER_A);
    expect(listing.map((b) => [b.bal, b.right])).toContainEqual([team, 'member']);
  });
});
