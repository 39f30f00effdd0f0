import net from 'node:net';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { devPkiSettings } from '../../src/pki/index.js';
import { randomUUID } from 'node:crypto';
import {
  type ChildGateway,
  embeddedProcessesOf,
  externalBackendsConfig,
  launchChildGateway,
  startChildGateway,
  stopChildGateways,
} from '../helpers/child-gateway.js';
import {
  burstUntilInterrupted,
  createBal,
  expectEveryAckedDelivered,
  queueEntries,
  tally,
} from '../helpers/delivery-burst.js';
import { scratchDir, uniqueBal } from '../helpers/gateway.js';

/**
 * Issue #11 item 6: SIGTERM or SIGINT to the gateway's whole process group (a shell's Ctrl-C, systemd
 * without KillMode=mixed, a container runtime) stops it within delivery.drainSeconds + 10 s in every
 * state, never restarts Redis or Dovecot once stopping, and leaves neither running. The gateway runs
 * embedded (its own Redis and Dovecot) in its own process group, which the test signals.
 */
const DRAIN_SECONDS = 5;
const LIMIT_MS = (DRAIN_SECONDS + 10) * 1000;

afterEach((context) => stopChildGateways(context));

function embeddedConfig(dataDir: string): Record<string, unknown> {
  return {
    dataDir,
    ...devPkiSettings(inject('pkiDir')),
    smtp: {
      hostname: 'mx.op.mssante.test',
      mx: { host: '127.0.0.1', port: 0 },
      submission: { host: '127.0.0.1', port: 0, tlsPort: 0 },
    },
    imap: { host: '127.0.0.1', port: 0, tlsPort: 0 },
    delivery: { retryInitialSeconds: 0.2, retryMaxSeconds: 1, drainSeconds: DRAIN_SECONDS },
    metrics: { port: 0 },
    admin: { port: 0 },
    log: { level: 'info' },
  };
}

/** Signals the whole group and checks the stop: in time, no restart, nothing left running. */
async function stopGroup(
  gw: ChildGateway,
  dataDir: string,
  signal: NodeJS.Signals,
  exitCode: 0 | 1 = 0,
): Promise<number> {
  const started = Date.now();
  process.kill(-gw.pid, signal);
  const exit = await gw.waitExit(LIMIT_MS + 5_000);
  const ms = Date.now() - started;
  expect(exit, gw.tail()).toEqual({ code: exitCode, signal: null });
  expect(ms).toBeLessThan(LIMIT_MS);
  const events = gw.events();
  const stopAt = events.findIndex(
    (e) => e.event === 'gateway.stopping' || e.event === 'gateway.stop_requested',
  );
  const before = events.slice(0, stopAt);
  const after = events.slice(stopAt);
  // A restart: a restart scheduled, or a child started again (a first start may still finish).
  const restarts = after.filter((e) => {
    const name = String(e.event);
    if (name.endsWith('.restart.scheduled')) return true;
    return name.endsWith('.started') && before.some((b) => b.event === name);
  });
  expect(restarts, 'a child was restarted while stopping').toEqual([]);
  expect(await embeddedProcessesOf(dataDir), 'redis-server or dovecot left running').toEqual([]);
  return ms;
}

function pidOf(gw: ChildGateway, event: string): number {
  const e = [...gw.events()].reverse().find((x) => x.event === event);
  const pid = e?.childPid;
  if (typeof pid !== 'number') throw new Error(`no ${event} with a pid:\n${gw.tail()}`);
  return pid;
}

describe('a signal to the whole process group always stops the gateway', () => {
  it('idle: SIGTERM to the group', async () => {
    const dataDir = scratchDir('stop-idle');
    const gw = await startChildGateway({
      config: embeddedConfig(dataDir),
      name: 'stop-idle',
      detached: true,
    });
    const ms = await stopGroup(gw, dataDir, 'SIGTERM');
    console.error(`stop (idle, group SIGTERM): ${ms} ms`);
  });

  it('Redis down: SIGINT to the group while Redis is dead', async () => {
    const dataDir = scratchDir('stop-redis-down');
    const gw = await startChildGateway({
      config: embeddedConfig(dataDir),
      name: 'stop-redis',
      detached: true,
    });
    process.kill(pidOf(gw, 'redis.started'), 'SIGKILL');
    await gw.waitForEvent((e) => e.event === 'redis.exited');
    // With Redis gone the steps that need it are not waited for (nothing acknowledged depends on them: accepted
    // messages are in the spool): the stop ends in order, exit 0, well before the stop deadline.
    const ms = await stopGroup(gw, dataDir, 'SIGINT');
    expect(gw.events().some((e) => e.event === 'gateway.stop.redis_abandoned')).toBe(true);
    expect(gw.events().some((e) => e.event === 'gateway.stop_timeout')).toBe(false);
    expect(gw.events().some((e) => e.event === 'gateway.stopped')).toBe(true);
    console.error(`stop (Redis down, group SIGINT): ${ms} ms`);
  });

  it('Dovecot down: SIGTERM to the group while Dovecot is dead', async () => {
    const dataDir = scratchDir('stop-dovecot-down');
    const gw = await startChildGateway({
      config: embeddedConfig(dataDir),
      name: 'stop-dovecot',
      detached: true,
    });
    process.kill(pidOf(gw, 'dovecot.started'), 'SIGKILL');
    await gw.waitForEvent((e) => e.event === 'dovecot.exited');
    const ms = await stopGroup(gw, dataDir, 'SIGTERM');
    console.error(`stop (Dovecot down, group SIGTERM): ${ms} ms`);
  });

  it('during start-up: SIGTERM to the group before the gateway is ready', async () => {
    const dataDir = scratchDir('stop-startup');
    const gw = launchChildGateway({ config: embeddedConfig(dataDir), name: 'stop-startup', detached: true });
    await gw.waitForEvent((e) => e.event === 'redis.started', 30_000);
    const ms = await stopGroup(gw, dataDir, 'SIGTERM');
    console.error(`stop (start-up, group SIGTERM): ${ms} ms`);
  });

  it('a start-up that never ends: SIGTERM to the process still stops it within the limit', async () => {
    // A Redis that accepts connections and never answers: start-up waits on it for ever (as when
    // an operator's Redis hangs, or a backend is killed and its data directory removed under us).
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const dataDir = scratchDir('stop-hung-startup');
      const config = externalBackendsConfig({
        dataDir,
        prefix: `test:${randomUUID()}:`,
        delivery: { drainSeconds: DRAIN_SECONDS },
        overrides: { redis: { url: `redis://127.0.0.1:${port}` } },
      });
      const gw = launchChildGateway({ config, name: 'stop-hung-startup' });
      // Start-up has reached Redis.
      const deadline = Date.now() + 120_000;
      while (sockets.size === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(sockets.size, gw.tail()).toBeGreaterThan(0);
      const started = Date.now();
      gw.kill('SIGTERM');
      const exit = await gw.waitExit(LIMIT_MS + 5_000);
      const ms = Date.now() - started;
      console.error(`stop (start-up hung on Redis, SIGTERM): ${ms} ms`);
      expect(exit, gw.tail()).toEqual({ code: 1, signal: null });
      expect(ms).toBeLessThan(LIMIT_MS);
      expect(gw.events().some((e) => e.event === 'gateway.stop_timeout')).toBe(true);
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  for (const child of ['redis', 'dovecot'] as const) {
    it(`while ${child} is restarting: SIGTERM to the group between its death and its restart`, async () => {
      const dataDir = scratchDir(`stop-restarting-${child}`);
      const gw = await startChildGateway({
        config: embeddedConfig(dataDir),
        name: `stop-restarting-${child}`,
        detached: true,
      });
      const restarts = gw.events().filter((e) => e.event === `${child}.restart.scheduled`).length;
      process.kill(pidOf(gw, `${child}.started`), 'SIGKILL');
      // The supervisor has scheduled the restart (its delay still running) when the stop comes.
      await gw.waitForEvent(
        (e) =>
          e.event === `${child}.restart.scheduled` &&
          gw.events().filter((x) => x.event === `${child}.restart.scheduled`).length > restarts,
      );
      const ms = await stopGroup(gw, dataDir, 'SIGTERM');
      console.error(`stop (${child} restarting, group SIGTERM): ${ms} ms`);
    });
  }

  it('under load: SIGTERM to the group mid-burst loses no acknowledged message, delivers none twice', async (context) => {
    const dataDir = scratchDir('stop-load');
    // The shared Redis and Dovecot of the test run, so that the mailbox can be read after the stop.
    const config = externalBackendsConfig({
      dataDir,
      prefix: `test:${randomUUID()}:`,
      delivery: { concurrency: 4, drainSeconds: DRAIN_SECONDS },
    });
    const first = await startChildGateway({ config, name: 'stop-load', detached: true });
    const bal = uniqueBal('stopload');
    await createBal(first, bal);
    let stop: Promise<number> | undefined;
    const outcomes = await burstUntilInterrupted(first, bal, randomUUID().slice(0, 8), {
      burst: 60,
      connections: 4,
      interruptAfterAcks: 20,
      interrupt: () => {
        stop = stopGroup(first, dataDir, 'SIGTERM');
        stop.catch(() => undefined); // awaited below; kept from being reported unhandled meanwhile
      },
    });
    if (!stop) throw new Error('the burst ended before the stop');
    const ms = await stop;
    const { acked, failed, unsent } = tally(outcomes);
    expect(acked.length).toBeGreaterThanOrEqual(20);
    const spooledAtStop = queueEntries(dataDir);
    const second = await startChildGateway({ config, name: 'stop-load-again' });
    const { duplicates, unackedArrived } = await expectEveryAckedDelivered(bal, dataDir, outcomes);
    const figures =
      `stop under load ${ms} ms: ${acked.length} acked, ${failed.length} refused or cut short by the stop ` +
      `(${unackedArrived} delivered anyway), ${unsent} unsent; ${spooledAtStop} spool entries left by the stop; ` +
      `${duplicates} delivered twice`;
    console.error(figures);
    await context.annotate(figures);
    second.kill('SIGTERM');
    expect((await second.waitExit()).code).toBe(0);
  }, 180_000);
});
