import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/app/index.js';
import { mintDevToken } from '../../src/auth/index.js';
import { runMssgwInProcess } from '../helpers/admin-cli.js';
import { PEER_DOMAIN, startTestGateway, uniqueBal } from '../helpers/gateway.js';
import { eventually, inboxMessages } from '../helpers/mailbox.js';
import { peerMx, tokenSubmission } from '../helpers/smtp-clients.js';

/**
 * `mssgw queue show|retry|delete` of a job that has left the queue: what became of it, from the
 * journal (exit 4, QUEUE_JOB_FINISHED), or that it never existed here (exit 1, QUEUE_JOB_NOT_FOUND).
 */
const system = { kind: 'system' as const, id: 'test' };
const DOCTOR = '810000000011';
let gw: Gateway;
let api: string[];

beforeAll(async () => {
  // Relay off: a message for another operator stays queued until the operator deletes it.
  gw = await startTestGateway({ overrides: { relay: { enabled: false } } });
  api = ['--api', `http://127.0.0.1:${gw.addresses.admin!.port}`];
});
afterAll(async () => {
  await gw?.stop();
});

const queue = (...args: string[]) => runMssgwInProcess([...api, 'queue', ...args]);

describe('queue commands on a job that left the queue', () => {
  it('tells a delivered job from one never received, each with its exit code', async () => {
    const bal = uniqueBal('history');
    await gw.registry.create({ address: bal, type: 'PER', owner: '810000000001' }, system);
    const info = await peerMx(gw.addresses.mx!.port).sendMail({
      envelope: { from: `martin@${PEER_DOMAIN}`, to: [bal] },
      raw: `From: <martin@${PEER_DOMAIN}>\r\nTo: <${bal}>\r\nSubject: history\r\n\r\nhello\r\n`,
    });
    const spoolId = /queued as ([0-9a-z]+)$/.exec(info.response)![1]!;
    await eventually(
      () => inboxMessages(bal),
      (m) => m.length === 1,
    );
    const job = `${spoolId}~local`;
    // The job may leave BullMQ a moment after the store has the message.
    const shown = await eventually(
      () => queue('show', job),
      (r) => r.code !== 0,
    );
    const story = new RegExp(
      `^job ${job} is finished: delivered to ${bal.replace(/\./g, '\\.')} at \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\n$`,
    );
    expect(shown).toMatchObject({ code: 4, stdout: '' });
    expect(shown.stderr).toMatch(story);
    const retried = await queue('retry', job);
    expect(retried.code).toBe(4);
    expect(retried.stderr).toMatch(story);

    const never = `${Date.now().toString(36).padStart(9, '0')}0123456789ab~local`;
    const missing = await queue('show', never);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(
      `error: no queue job ${never}: this node never received message ${never.split('~')[0]} (nothing in its journal since ${new Date().toISOString().slice(0, 10)}) (QUEUE_JOB_NOT_FOUND)\n`,
    );
    const malformed = await queue('retry', 'nope');
    expect(malformed.code).toBe(1);
    expect(malformed.stderr).toBe(
      'error: no queue job nope: a job id is <spool id>~<destination> (local or a domain), as mssgw queue list prints (QUEUE_JOB_NOT_FOUND)\n',
    );
  });

  it('says who deleted a job and what became of its recipients', async () => {
    const doctor = uniqueBal('deleted');
    await gw.registry.create({ address: doctor, type: 'PER', owner: DOCTOR }, system);
    const accessToken = await mintDevToken({ pkiDir: gw.config.pkiDir, subject: DOCTOR, ttlSeconds: 300 });
    const to = `martin.${randomUUID().slice(0, 8)}@${PEER_DOMAIN}`;
    const info = await tokenSubmission(gw.addresses.submission!.port, doctor, accessToken).sendMail({
      from: doctor,
      to,
      subject: 'to be deleted',
      text: 'bonjour',
    });
    const job = `${/queued as ([0-9a-z]+)$/.exec(info.response)![1]!}~${PEER_DOMAIN}`;
    await eventually(
      () => queue('show', job),
      (r) => r.code === 0,
    );
    expect(await queue('delete', job)).toMatchObject({ code: 0 });
    const shown = await queue('show', job);
    expect(shown.code).toBe(4);
    expect(shown.stderr).toMatch(new RegExp(`^job ${job} is finished: deleted by \\S+ \\S+ at \\S+Z`));
    expect(shown.stderr).toContain(`failed for ${to} at `);
  });
});
