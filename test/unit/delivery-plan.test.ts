import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  type SpoolEnvelope,
  applyAttempt,
  delayNoticeDue,
  destinationsOf,
  expireIfDue,
  initialState,
  jobIdOf,
  parseJobId,
  retryDelayMs,
} from '../../src/delivery/index.js';
import { DotStuffer, capabilitiesOf } from '../../src/relay/index.js';

const receivedAt = '2026-01-01T00:00:00.000Z';
const policy = { retryInitialSeconds: 15, retryMaxSeconds: 1800, maxAgeHours: 120, delayNoticeHours: 4 };
const at = (hours: number) => new Date(Date.parse(receivedAt) + hours * 3_600_000);

function envelope(): SpoolEnvelope {
  const r = (address: string, route: 'local' | 'relay') => ({
    address,
    route,
    state: 'pending' as const,
    attempts: 0,
  });
  return {
    id: 'abc',
    version: 1,
    receivedAt,
    mailFrom: 'dr@op.mssante.test',
    channel: 'submission',
    size: 10,
    peer: { address: '127.0.0.1' },
    recipients: [
      r('a@op.mssante.test', 'local'),
      r('x@peer.mssante.test', 'relay'),
      r('y@PEER.mssante.test', 'relay'),
      r('185057800608491@patient.mssante.fr', 'relay'),
    ],
    nextAttemptAt: receivedAt,
  };
}

describe('delivery plan', () => {
  it('splits a message into one destination per recipient domain, plus local', () => {
    const d = destinationsOf(envelope());
    expect([...d.keys()]).toEqual(['local', 'peer.mssante.test', 'patient.mssante.fr']);
    expect(d.get('peer.mssante.test')!.map((r) => r.address)).toEqual([
      'x@peer.mssante.test',
      'y@PEER.mssante.test',
    ]);
  });

  it('makes job ids BullMQ accepts and reads them back', () => {
    const id = jobIdOf('0abc', 'peer.mssante.test');
    expect(id).toBe('0abc~peer.mssante.test');
    expect(id).not.toContain(':');
    expect(parseJobId(id)).toEqual({ spoolId: '0abc', destination: 'peer.mssante.test' });
    for (const bad of ['', '~x', 'x~', 'nothing']) expect(parseJobId(bad)).toBeUndefined();
  });

  it('records each recipient outcome; an unanswered recipient stays pending', () => {
    const s = initialState(envelope(), 'peer.mssante.test');
    const applied = applyAttempt(
      s,
      [
        {
          recipient: 'x@peer.mssante.test',
          outcome: 'permanent',
          code: 550,
          enhancedCode: '5.1.1',
          text: 'gone',
        },
      ],
      at(1),
    );
    expect(applied.failed.map((r) => r.address)).toEqual(['x@peer.mssante.test']);
    expect(applied.deferred.map((r) => r.address)).toEqual(['y@PEER.mssante.test']);
    expect(s.recipients[0]).toMatchObject({
      state: 'failed',
      status: '5.1.1',
      lastResult: '550 5.1.1 gone',
      attempts: 1,
    });
    expect(s.recipients[1]).toMatchObject({ state: 'pending', attempts: 1 });
    expect(s.attempts).toBe(1);
  });

  it.each([
    [1, 15],
    [2, 30],
    [5, 240],
    [20, 1800],
  ])('backs off exponentially with jitter: attempt %i waits about %i s', (attempts, seconds) => {
    const low = retryDelayMs(attempts, receivedAt, policy, at(0), () => 0);
    const high = retryDelayMs(attempts, receivedAt, policy, at(0), () => 1);
    expect(low).toBeCloseTo(seconds * 750, 0);
    expect(high).toBeCloseTo(seconds * 1250, 0);
  });

  it('never schedules a retry past the expiry', () => {
    expect(retryDelayMs(20, receivedAt, policy, at(119.9), () => 1)).toBeLessThanOrEqual(0.1 * 3_600_000 + 1);
  });

  it('expires pending recipients at the maximum age, not before', () => {
    const s = initialState(envelope(), 'peer.mssante.test');
    expect(expireIfDue(s, receivedAt, policy, at(119.99))).toEqual([]);
    const expired = expireIfDue(s, receivedAt, policy, at(120));
    expect(expired).toHaveLength(2);
    expect(s.recipients.every((r) => r.state === 'failed' && r.status === '5.4.7')).toBe(true);
  });

  it('asks for one delay notice after the delay, never twice', () => {
    const s = initialState(envelope(), 'peer.mssante.test');
    expect(delayNoticeDue(s, receivedAt, policy, at(3.9))).toBe(false);
    expect(delayNoticeDue(s, receivedAt, policy, at(4))).toBe(true);
    s.delayNotifiedAt = at(4).toISOString();
    expect(delayNoticeDue(s, receivedAt, policy, at(8))).toBe(false);
  });
});

describe('SMTP DATA encoding', () => {
  const stuff = async (chunks: string[]) => {
    const out: Buffer[] = [];
    for await (const c of Readable.from(chunks.map((x) => Buffer.from(x))).pipe(new DotStuffer()))
      out.push(c as Buffer);
    return Buffer.concat(out).toString();
  };

  it.each([
    [['a\r\n.b\r\n'], 'a\r\n..b\r\n.\r\n'],
    [['.start\r\n'], '..start\r\n.\r\n'],
    [['a\r', '\n.', 'b\r\n'], 'a\r\n..b\r\n.\r\n'],
    [['no end'], 'no end\r\n.\r\n'],
    [['bare\nlf\n'], 'bare\r\nlf\r\n.\r\n'],
    [['ends with cr\r'], 'ends with cr\r\n.\r\n'],
    // RFC 5321 §2.3.8: a bare CR is sent as a line end too, and the line after it is stuffed.
    [['bare\rcr\r\n'], 'bare\r\ncr\r\n.\r\n'],
    [['a\r.b'], 'a\r\n..b\r\n.\r\n'],
  ])('%j → %j', async (input, expected) => {
    expect(await stuff(input)).toBe(expected);
  });

  it('reads the EHLO keywords that matter', () => {
    const reply = {
      code: 250,
      raw: '250 SMTPUTF8',
      text: 'mx.peer',
      lines: ['mx.peer', 'SIZE 1000', 'DSN', '8BITMIME', 'PIPELINING'],
    };
    expect(capabilitiesOf(reply)).toEqual({ dsn: true, pipelining: true, eightBitMime: true, size: 1000 });
    expect(capabilitiesOf({ code: 250, raw: '250 x', text: 'mx', lines: ['mx', 'SIZE'] })).toEqual({
      dsn: false,
      pipelining: false,
      eightBitMime: false,
    });
  });
});
