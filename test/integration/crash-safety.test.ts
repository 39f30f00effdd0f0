import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, watch, writeFileSync } from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { afterEach, describe, expect, it } from 'vitest';
import {
  externalBackendsConfig,
  startChildGateway,
  stopChildGateways,
  type ReadyChildGateway,
} from '../helpers/child-gateway.js';
import { identity, PEER_DOMAIN, pkiFile, scratchDir, uniqueBal } from '../helpers/gateway.js';
import { eventually, inboxMessages } from '../helpers/mailbox.js';
import { journalEvents } from '../helpers/journal.js';
import {
  type Outcome,
  burstUntilInterrupted,
  copiesIn,
  createBal,
  expectEveryAckedDelivered,
  queueEntries,
  tally,
} from '../helpers/delivery-burst.js';

/**
 * ARCHITECTURE.md §6: "250 OK" means the message is safe, and it reaches our store exactly once. The
 * gateway is killed with SIGKILL while peers are sending and while it delivers; after a restart on
 * the same data directory every message a peer saw acknowledged must be in the mailbox, and no
 * message twice: a kill between the store's LMTP answer and the spool removal is recovered by asking
 * the store for the spool id before delivering again.
 */

/** Restarts, recoveries and the store checks of recovered entries take time on a busy machine. */
const BURST = 60;
const CONNECTIONS = 4;
const KILL_AFTER_ACKS = 20;
const DELIVERY_CONCURRENCY = 4;
/** With the store down: acknowledgements before the first kill, all of them left in the spool. */
const STORE_DOWN_KILL_AFTER_ACKS = 45;
/** Deliveries of the start-up sweep before the second kill. */
const SWEEP_KILL_AFTER = 5;

afterEach((context) => stopChildGateways(context));

/**
 * Resolves as soon as the audit journal satisfies `predicate`: woken by the journal folder's change
 * notifications (inotify), not by polling, so a test can act within a few milliseconds of an event.
 */
function whenJournal(
  dataDir: string,
  predicate: (events: Array<Record<string, unknown>>) => boolean,
  timeoutMs: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const watcher = watch(path.join(dataDir, 'journal'));
    const done = (err?: Error) => {
      clearTimeout(timer);
      watcher.close();
      if (err) reject(err);
      else resolve();
    };
    const check = () => {
      if (predicate(journalEvents(dataDir))) done();
    };
    const timer = setTimeout(
      () => done(new Error(`journal condition not met in ${timeoutMs} ms`)),
      timeoutMs,
    );
    watcher.on('change', check);
    watcher.on('error', (err) => done(err));
    check();
  });
}

/** The `spool.recovered` log event of a start (absent when the spool was empty). */
function recoveredBy(gw: ReadyChildGateway): { entries: number; removedUncommitted: number } {
  const event = gw.events().find((e) => e.event === 'spool.recovered');
  return {
    entries: typeof event?.entries === 'number' ? event.entries : 0,
    removedUncommitted: typeof event?.removedUncommitted === 'number' ? event.removedUncommitted : 0,
  };
}

function burstUntilKilled(
  gw: ReadyChildGateway,
  to: string,
  run: string,
  killAfterAcks = KILL_AFTER_ACKS,
): Promise<Outcome[]> {
  return burstUntilInterrupted(gw, to, run, {
    burst: BURST,
    connections: CONNECTIONS,
    interruptAfterAcks: killAfterAcks,
    interrupt: () => gw.kill('SIGKILL'),
  });
}

function gatewayConfig(dataDir: string, store?: Record<string, unknown>): Record<string, unknown> {
  const config = externalBackendsConfig({
    dataDir,
    prefix: `test:${randomUUID()}:`,
    delivery: { concurrency: DELIVERY_CONCURRENCY, lockSeconds: 2 },
  });
  return store ? { ...config, store: { ...(config.store as object), ...store } } : config;
}

describe('crash safety: SIGKILL during a burst of deliveries', () => {
  it('every acknowledged message is in the mailbox after a restart on the same spool', async (context) => {
    const dataDir = scratchDir('crash');
    const config = gatewayConfig(dataDir);
    const first = await startChildGateway({ config, name: 'first' });
    const bal = uniqueBal('crash');
    await createBal(first, bal);

    const started = Date.now();
    const outcomes = await burstUntilKilled(first, bal, randomUUID().slice(0, 8));
    expect((await first.waitExit()).signal).toBe('SIGKILL');
    const burstMs = Date.now() - started;
    const { acked, failed, unsent } = tally(outcomes);
    const spooledAtKill = queueEntries(dataDir);
    for (const o of acked) expect(o.response).toMatch(/^250 2\.0\.0 Ok: queued as [0-9a-z]+$/);
    // The kill point is deterministic enough: acknowledged messages and transactions cut short.
    expect(acked.length).toBeGreaterThanOrEqual(KILL_AFTER_ACKS);
    expect(failed.length).toBeGreaterThan(0);
    expect(
      failed.filter((o) => o.responseCode !== undefined),
      'refused rather than cut short',
    ).toEqual([]);

    const restartedAt = Date.now();
    const second = await startChildGateway({ config, name: 'second' });
    // The start-up sweep re-queued exactly what the spool held; a cut-short DATA leaves only tmp files.
    const recovered = recoveredBy(second);
    expect(recovered.entries).toBe(spooledAtKill);
    const { duplicates, unackedArrived } = await expectEveryAckedDelivered(bal, dataDir, outcomes);
    await context.annotate(
      `burst ${burstMs} ms: ${acked.length} acked, ${failed.length} cut short by the kill ` +
        `(${unackedArrived} of them delivered anyway), ${unsent} unsent; ${spooledAtKill} spool ` +
        `entries at the kill, ${recovered.removedUncommitted} uncommitted removed by the sweep; ${duplicates} delivered twice; restart to all delivered ${Date.now() - restartedAt} ms`,
    );
    second.kill('SIGTERM');
    expect((await second.waitExit()).code).toBe(0);
  }, 180_000);

  it('a second SIGKILL during the recovery sweep loses nothing either', async (context) => {
    const dataDir = scratchDir('crash-sweep');
    const bal = uniqueBal('sweep');
    const config = gatewayConfig(dataDir);
    // The store's LMTP is down during the burst, so every acknowledged message is still in the spool
    // when the gateway dies: the restart has a real backlog to sweep.
    const lmtpDown = { path: path.join(dataDir, 'lmtp-down.sock') };
    const storeDown = { ...config, store: { ...(config.store as object), lmtp: lmtpDown } };
    const first = await startChildGateway({ config: storeDown, name: 'store-down' });
    await createBal(first, bal);
    const outcomes = await burstUntilKilled(first, bal, randomUUID().slice(0, 8), STORE_DOWN_KILL_AFTER_ACKS);
    expect((await first.waitExit()).signal).toBe('SIGKILL');
    const { acked, failed } = tally(outcomes);
    expect(acked.length).toBeGreaterThanOrEqual(STORE_DOWN_KILL_AFTER_ACKS);
    expect(failed.length).toBeGreaterThan(0);
    expect(
      failed.filter((o) => o.responseCode !== undefined),
      'refused rather than cut short',
    ).toEqual([]);
    const spooledAtFirstKill = queueEntries(dataDir);
    expect(spooledAtFirstKill).toBeGreaterThanOrEqual(acked.length);
    expect(await inboxMessages(bal)).toEqual([]);

    // Store back; killed again in the middle of the start-up sweep, after its first deliveries.
    const second = await startChildGateway({ config, name: 'sweep-killed' });
    expect(recoveredBy(second)).toMatchObject({ entries: spooledAtFirstKill });
    const deliveredBy = (pid: number) => (events: Array<Record<string, unknown>>) =>
      events.filter((e) => e.event === 'delivery.local.delivered' && e.pid === pid).length;
    await whenJournal(dataDir, (events) => deliveredBy(second.pid)(events) >= SWEEP_KILL_AFTER, 60_000);
    second.kill('SIGKILL');
    expect((await second.waitExit()).signal).toBe('SIGKILL');
    const spooledAtSecondKill = queueEntries(dataDir);
    const deliveredBeforeSecondKill = deliveredBy(second.pid)(journalEvents(dataDir));
    // The second kill landed mid-sweep: some entries delivered, some still spooled.
    expect(spooledAtSecondKill).toBeGreaterThan(0);
    expect(spooledAtSecondKill).toBeLessThan(spooledAtFirstKill);

    const third = await startChildGateway({ config, name: 'third' });
    expect(recoveredBy(third)).toMatchObject({ entries: spooledAtSecondKill });
    const { duplicates, unackedArrived } = await expectEveryAckedDelivered(bal, dataDir, outcomes);
    await context.annotate(
      `${acked.length} acked and ${failed.length} cut short (${unackedArrived} delivered anyway); ` +
        `spool ${spooledAtFirstKill} at the first kill, ${spooledAtSecondKill} at the kill during the sweep ` +
        `(${deliveredBeforeSecondKill} delivered by then); ${duplicates} delivered twice`,
    );
    third.kill('SIGTERM');
    expect((await third.waitExit()).code).toBe(0);
  }, 180_000);
});

describe('crash safety: temporary files a killed process left', () => {
  it('are swept at the next start (counted in a log event and a metric); committed entries stay', async () => {
    const dataDir = scratchDir('crash-tmp');
    const bal = uniqueBal('tmp');
    const config = gatewayConfig(dataDir);
    // Store down: the acknowledged message stays committed in the spool across the kill.
    const lmtpDown = { path: path.join(dataDir, 'lmtp-down.sock') };
    const storeDown = { ...config, store: { ...(config.store as object), lmtp: lmtpDown } };
    const first = await startChildGateway({ config: storeDown, name: 'tmp-first' });
    await createBal(first, bal);
    const peer = identity('peer-trusted');
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: first.ports.mx,
      secure: false,
      requireTLS: true,
      tls: { key: peer.key, cert: peer.cert, ca: pkiFile('ca/root.crt'), servername: 'localhost' },
      name: `mx.${PEER_DOMAIN}`,
    });
    const messageId = `<tmp-${randomUUID()}@${PEER_DOMAIN}>`;
    const info = await transport.sendMail({
      envelope: { from: `lab@${PEER_DOMAIN}`, to: [bal] },
      raw: `From: <lab@${PEER_DOMAIN}>\r\nTo: <${bal}>\r\nSubject: kept\r\nMessage-ID: ${messageId}\r\n\r\nbody\r\n`,
    });
    transport.close();
    expect(info.response).toMatch(/^250 /);
    first.kill('SIGKILL');
    expect((await first.waitExit()).signal).toBe('SIGKILL');
    const spool = path.join(dataDir, 'spool');
    const [committed] = readdirSync(path.join(spool, 'queue'))
      .filter((f) => f.endsWith('.entry'))
      .map((f) => f.slice(0, -'.entry'.length));
    expect(committed).toBeDefined();
    // The kill itself may have cut short a write: the attempt at the down store writes the entry's
    // retry state through a temporary file, and on a busy machine the kill can land in it.
    const byKill = [
      ...readdirSync(path.join(spool, 'tmp')).map((f) => path.join(spool, 'tmp', f)),
      ...readdirSync(path.join(spool, 'state'))
        .filter((f) => !(f.startsWith(`${committed}~`) && f.endsWith('.json')))
        .map((f) => path.join(spool, 'state', f)),
    ];
    // What kill -9 leaves mid-write: a DATA cut short, an envelope the previous version left in
    // tmp/, a submission's copy, a state write of the committed entry, and the state file of an
    // entry whose removal was cut short.
    const left = [
      path.join(spool, 'tmp', '0mxzzzzzz0123456789ab.entry'),
      path.join(spool, 'tmp', '0mxzzzzzz0123456789ab.json'),
      path.join(spool, 'tmp', '0mxzzzzzz0123456789ac.entry.next'),
      path.join(spool, 'state', `${committed}~local.json.0a1b2c3d.tmp`),
      path.join(spool, 'state', '0mxzzzzzz0123456789ad~local.json'),
    ];
    for (const file of left) writeFileSync(file, 'partial');

    const second = await startChildGateway({ config, name: 'tmp-second' });
    const swept = second.events().find((e) => e.event === 'spool.temporary_swept');
    const temporary = [...byKill, ...left];
    expect(swept?.removedTemporary, `left by the kill: ${byKill.join(', ')}`).toBe(temporary.length);
    expect(temporary.filter((file) => existsSync(file))).toEqual([]);
    expect(recoveredBy(second).entries).toBe(1);
    const metrics = await (await fetch(`http://127.0.0.1:${second.ports.metrics}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`^mssgw_spool_temporary_swept_total ${temporary.length}$`, 'm'));
    // The committed entry was delivered, once.
    const copies = await eventually(
      () => copiesIn(bal),
      (c) => c.get(messageId) === 1,
    );
    expect(copies.get(messageId)).toBe(1);
    second.kill('SIGTERM');
    expect((await second.waitExit()).code).toBe(0);
  }, 180_000);
});

/** Kills of the loop below; the campaign (`npm run bench -- crash`) sets more with CRASH_KILLS. */
const LOOP_KILLS = Number(process.env.CRASH_KILLS ?? 20);
const LOOP_LANES = 4;
/**
 * The kill comes at a random instant this long after the round's first acknowledgement (the load is
 * on: on a busy machine the peers' TLS connections can take seconds to open).
 */
const LOOP_KILL_WINDOW_MS = [150, 1500] as const;

/**
 * Peers send without pause over reused connections (one per lane) until `stopped()`; each message
 * has its own Message-ID. Resolves with every message's outcome once the lanes stop.
 */
async function sendUntil(
  gw: ReadyChildGateway,
  to: string,
  run: string,
  stopped: () => boolean,
  outcomes: Map<string, Outcome>,
  onAck: () => void = () => {},
): Promise<void> {
  const peer = identity('peer-trusted');
  const lane = async (n: number) => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: gw.ports.mx,
      secure: false,
      requireTLS: true,
      pool: true,
      maxConnections: 1,
      tls: { key: peer.key, cert: peer.cert, ca: pkiFile('ca/root.crt'), servername: 'localhost' },
      name: `mx.${PEER_DOMAIN}`,
      connectionTimeout: 30_000,
      greetingTimeout: 30_000,
      socketTimeout: 30_000,
    });
    try {
      for (let k = 0; !stopped(); k += 1) {
        const messageId = `<loop-${run}-${n}-${k}@${PEER_DOMAIN}>`;
        outcomes.set(messageId, { messageId, state: 'unsent' });
        try {
          const info = await transport.sendMail({
            envelope: { from: `sender@${PEER_DOMAIN}`, to: [to] },
            from: `Dr Sender <sender@${PEER_DOMAIN}>`,
            to,
            subject: `loop ${run} ${n} ${k}`,
            messageId,
            text: `message ${k} of lane ${n}, run ${run}\n`.repeat(20),
          });
          outcomes.set(messageId, { messageId, state: 'acked', response: info.response });
          onAck();
        } catch (err) {
          const { message, responseCode } = err as Error & { responseCode?: number };
          outcomes.set(messageId, {
            messageId,
            state: 'failed',
            error: message,
            ...(responseCode === undefined ? {} : { responseCode }),
          });
          return;
        }
      }
    } finally {
      transport.close();
    }
  };
  await Promise.all(Array.from({ length: LOOP_LANES }, (_, n) => lane(n)));
}

describe('exactly once into our store: SIGKILL at random instants, over and over', () => {
  it(
    `${LOOP_KILLS} kills under load: no acknowledged message lost, none delivered twice`,
    async (context) => {
      const dataDir = scratchDir('crash-loop');
      const config = gatewayConfig(dataDir);
      const bal = uniqueBal('loop');
      const outcomes = new Map<string, Outcome>();
      const killedDuringDelivery: number[] = [];
      let created = false;
      for (let round = 0; round < LOOP_KILLS; round += 1) {
        // A restart recovers a spool full of entries on a machine that may be very busy.
        const gw = await startChildGateway({ config, name: `loop-${round}`, readyTimeoutMs: 120_000 });
        if (!created) {
          await createBal(gw, bal);
          created = true;
        }
        let killed = false;
        const [low, high] = LOOP_KILL_WINDOW_MS;
        const delay = low + Math.random() * (high - low);
        let acknowledged = () => {};
        const firstAck = new Promise<void>((resolve) => (acknowledged = resolve));
        // Without any acknowledgement in two minutes the round is killed anyway (and the count of
        // acknowledged messages below says so).
        const killer = Promise.race([firstAck, new Promise((r) => setTimeout(r, 120_000))])
          .then(() => new Promise((r) => setTimeout(r, delay)))
          .then(() => {
            killed = true;
            gw.kill('SIGKILL');
          });
        await Promise.all([sendUntil(gw, bal, `${round}`, () => killed, outcomes, acknowledged), killer]);
        expect((await gw.waitExit()).signal).toBe('SIGKILL');
        killedDuringDelivery.push(queueEntries(dataDir));
        if (process.env.CRASH_KILLS && round % 10 === 9) {
          // Campaign progress: a second copy, once in the store, never goes away: it shows already.
          const copies = await copiesIn(bal);
          const twice = [...copies.values()].filter((n) => n > 1).length;
          const acked = [...outcomes.values()].filter((o) => o.state === 'acked').length;
          process.stdout.write(
            `crash-campaign progress: ${round + 1} kills, ${acked} acknowledged, ${copies.size} in the mailbox, ${twice} with more than one copy\n`,
          );
        }
      }
      const last = await startChildGateway({ config, name: 'loop-final' });
      const all = [...outcomes.values()];
      const { acked, failed } = tally(all);
      expect(acked.length).toBeGreaterThanOrEqual(LOOP_KILLS);
      expect(
        failed.filter((o) => o.responseCode !== undefined),
        'refused rather than cut short',
      ).toEqual([]);
      const { unackedArrived } = await expectEveryAckedDelivered(bal, dataDir, all);
      const spooled = killedDuringDelivery.reduce((a, b) => a + b, 0);
      // How many times a restart found the message already in the store and did not deliver it again.
      const foundInStore = journalEvents(dataDir).filter(
        (e) => e.event === 'delivery.local.delivered' && String(e.result).includes('already in the mailbox'),
      ).length;
      // The kills did land while messages were waiting for, or in, delivery.
      expect(spooled).toBeGreaterThan(0);
      const summary =
        `${LOOP_KILLS} kills: ${acked.length} acknowledged, all delivered once; ${failed.length} cut ` +
        `short (${unackedArrived} of them delivered, once); ${foundInStore} found in the store on recovery ` +
        `(not delivered again); spool entries at the kills: ` +
        killedDuringDelivery.join(',');
      await context.annotate(summary);
      // The campaign (bench/crash-campaign.ts) reads its figures from here.
      if (process.env.CRASH_KILLS) process.stdout.write(`crash-campaign: ${summary}\n`);
      last.kill('SIGTERM');
      expect((await last.waitExit()).code).toBe(0);
    },
    60_000 + LOOP_KILLS * 45_000,
  );
});
