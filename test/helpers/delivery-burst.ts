import { readdirSync } from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { expect } from 'vitest';
import { call } from './admin-http.js';
import type { ReadyChildGateway } from './child-gateway.js';
import { identity, PEER_DOMAIN, pkiFile } from './gateway.js';
import { eventually, inboxMessages } from './mailbox.js';

/**
 * Bursts of messages from the trusted peer to a child gateway, interrupted (killed, stopped) half-way,
 * and the check that follows a restart: every acknowledged message is in the mailbox, none twice
 * (ARCHITECTURE.md §6). Shared by the crash-safety and stop tests.
 */

export interface Outcome {
  readonly messageId: string;
  readonly state: 'acked' | 'failed' | 'unsent';
  readonly response?: string;
  readonly error?: string;
  /** SMTP reply code of a refusal; absent when the connection died without a reply. */
  readonly responseCode?: number;
}

export async function createBal(gw: ReadyChildGateway, address: string): Promise<void> {
  const answer = await call({ url: `http://127.0.0.1:${gw.ports.admin}` }, 'POST', '/v1/bals', {
    json: { address, type: 'PER', owner: '810000000001' },
  });
  expect(answer.status, JSON.stringify(answer.body)).toBe(201);
}

/** Committed spool entries: one `.entry` file each (`.json` for an entry of the previous version). */
export function queueEntries(dataDir: string): number {
  return readdirSync(path.join(dataDir, 'spool', 'queue')).filter(
    (f) => f.endsWith('.entry') || f.endsWith('.json'),
  ).length;
}

function messageIdOf(source: Buffer): string | undefined {
  return /^Message-ID:\s*(<[^>\r\n]+>)/im.exec(source.toString('latin1'))?.[1];
}

/**
 * Sends `burst` messages from the trusted peer over `connections` parallel sequential senders (one
 * SMTP session per message, as an MTA with several queue runners does) and calls `interrupt` (a
 * SIGKILL, a SIGTERM...) once `interruptAfterAcks` messages have been acknowledged, while the other
 * senders are mid-transaction. Senders stop at their next failure after the interruption.
 */
export async function burstUntilInterrupted(
  gw: ReadyChildGateway,
  to: string,
  run: string,
  options: {
    readonly burst: number;
    readonly connections: number;
    readonly interruptAfterAcks: number;
    readonly interrupt: () => void;
  },
): Promise<Outcome[]> {
  const { burst: BURST, connections: CONNECTIONS, interruptAfterAcks: killAfterAcks } = options;
  const peer = identity('peer-trusted');
  const ids = Array.from({ length: BURST }, (_, n) => `<burst-${run}-${n}@${PEER_DOMAIN}>`);
  const outcomes = new Map<string, Outcome>(ids.map((id) => [id, { messageId: id, state: 'unsent' }]));
  let acks = 0;
  let killed = false;
  const sender = async (lane: number) => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: gw.ports.mx,
      secure: false,
      requireTLS: true,
      tls: { key: peer.key, cert: peer.cert, ca: pkiFile('ca/root.crt'), servername: 'localhost' },
      name: `mx.${PEER_DOMAIN}`,
      connectionTimeout: 60_000,
      greetingTimeout: 60_000,
      socketTimeout: 60_000,
    });
    try {
      for (let n = lane; n < BURST; n += CONNECTIONS) {
        const messageId = ids[n]!;
        if (killed) return;
        try {
          const info = await transport.sendMail({
            envelope: { from: `sender@${PEER_DOMAIN}`, to: [to] },
            from: `Dr Sender <sender@${PEER_DOMAIN}>`,
            to,
            subject: `burst ${n}`,
            messageId,
            headers: { 'X-MSS-NIL': 'LPS-CRASH-TEST 1.0', 'X-MSS-INS': 'N' },
            text: `message ${n} of the burst ${run}\n`.repeat(20),
          });
          outcomes.set(messageId, { messageId, state: 'acked', response: info.response });
          acks += 1;
          if (acks === killAfterAcks) {
            killed = true;
            options.interrupt();
          }
        } catch (err) {
          const { message, responseCode } = err as Error & { responseCode?: number };
          outcomes.set(messageId, {
            messageId,
            state: 'failed',
            error: message,
            ...(responseCode === undefined ? {} : { responseCode }),
          });
          if (killed) return;
          throw err;
        }
      }
    } finally {
      transport.close();
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, (_, lane) => sender(lane)));
  return [...outcomes.values()];
}

/** Message-ID → number of copies in the mailbox. */
export async function copiesIn(address: string): Promise<Map<string, number>> {
  const copies = new Map<string, number>();
  for (const source of await inboxMessages(address)) {
    const id = messageIdOf(source) ?? '(none)';
    copies.set(id, (copies.get(id) ?? 0) + 1);
  }
  return copies;
}

export interface Tally {
  readonly acked: readonly Outcome[];
  readonly failed: readonly Outcome[];
  readonly unsent: number;
}

export function tally(outcomes: readonly Outcome[]): Tally {
  const acked = outcomes.filter((o) => o.state === 'acked');
  const failed = outcomes.filter((o) => o.state === 'failed');
  return { acked, failed, unsent: outcomes.length - acked.length - failed.length };
}

/**
 * Waits until every acknowledged message is in the mailbox and the spool queue is empty, then checks
 * the at-least-once contract; returns the figures for the report.
 */
export async function expectEveryAckedDelivered(
  bal: string,
  dataDir: string,
  outcomes: readonly Outcome[],
): Promise<{ duplicates: number; unackedArrived: number }> {
  const { acked, failed } = tally(outcomes);
  const ackedIds = acked.map((o) => o.messageId);
  const copies = await eventually(
    () => copiesIn(bal),
    (c) => ackedIds.every((id) => c.has(id)),
    60_000,
  );
  expect(
    ackedIds.filter((id) => !copies.has(id)),
    'acknowledged messages missing after restart',
  ).toEqual([]);
  const drained = await eventually(
    () => Promise.resolve(queueEntries(dataDir)),
    (n) => n === 0,
    60_000,
  );
  expect(drained, 'spool queue entries left after recovery').toBe(0);
  // Nothing arrives that no peer sent.
  expect([...copies.keys()].filter((id) => !outcomes.some((o) => o.messageId === id))).toEqual([]);
  const duplicated = [...copies].filter(([, n]) => n > 1);
  expect(duplicated, 'messages delivered more than once').toEqual([]);
  return {
    duplicates: duplicated.length,
    unackedArrived: failed.filter((o) => copies.has(o.messageId)).length,
  };
}
