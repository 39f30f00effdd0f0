import { Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { GatewayError } from '../errors/index.js';
import type { RefreshResult } from './mirror-outcome.js';

/**
 * The BullMQ queue the mirror refreshes run on: one job scheduler per mirror, and one-off jobs for
 * `mssgw directory refresh`. BullMQ hands each job to one worker, so however many gateway processes
 * share the Redis, one refresh runs per due time.
 */
export const MIRROR_QUEUE = 'directory-mirrors';

/** BullMQ key prefix under the gateway's own (`<redis.prefix>bull:directory-mirrors:...`). */
export function bullPrefix(redisPrefix: string): string {
  return `${redisPrefix}bull`;
}

export interface RefreshJobData {
  readonly mirror: string;
  /** Accept a copy that shrank beyond maxShrinkShare (an operator's explicit decision). */
  readonly acceptShrink?: boolean;
}

export const REFRESH_JOB = 'refresh';

/** Scheduler id of a mirror's periodic refresh. */
export function schedulerId(mirror: string): string {
  return `mirror:${mirror}`;
}

/**
 * Asks the running gateway processes to refresh one mirror now, and waits for the outcome. Fails
 * with MIRROR_REFRESH_UNAVAILABLE naming the wait when no process took the job in time.
 */
export async function requestRefresh(options: {
  /** Makes a dedicated Redis connection (BullMQ blocks on it); closed before returning. */
  readonly connect: () => Redis;
  readonly redisPrefix: string;
  readonly mirror: string;
  readonly acceptShrink?: boolean;
  readonly timeoutMs: number;
}): Promise<RefreshResult> {
  const prefix = bullPrefix(options.redisPrefix);
  const connection = options.connect();
  const eventsConnection = options.connect();
  const queue = new Queue<RefreshJobData>(MIRROR_QUEUE, { connection, prefix });
  const events = new QueueEvents(MIRROR_QUEUE, { connection: eventsConnection, prefix });
  // A command-line call: failures reach the caller through the awaited calls below; without these
  // listeners BullMQ would also print each one's stack.
  queue.on('error', () => {});
  events.on('error', () => {});
  try {
    await events.waitUntilReady();
    // CLIENT LIST may be refused by a managed Redis: then we can only wait and see.
    const workers = await queue.getWorkersCount().catch(() => undefined);
    if (workers === 0)
      throw new GatewayError(
        'MIRROR_REFRESH_UNAVAILABLE',
        `no gateway process is working the mirror refreshes (is the gateway running with this redis.prefix?)`,
        { mirror: options.mirror },
      );
    const job = await queue.add(
      REFRESH_JOB,
      { mirror: options.mirror, ...(options.acceptShrink ? { acceptShrink: true } : {}) },
      { removeOnComplete: { age: 3600 }, removeOnFail: { age: 86400 } },
    );
    try {
      return (await job.waitUntilFinished(events, options.timeoutMs)) as RefreshResult;
    } catch (err) {
      const state = await job.getState().catch(() => 'unknown');
      if (state === 'waiting' || state === 'prioritized' || state === 'delayed') {
        await job.remove().catch(() => undefined);
        throw new GatewayError(
          'MIRROR_REFRESH_UNAVAILABLE',
          `no gateway process took the refresh of ${options.mirror} within ${options.timeoutMs / 1000} s (is the gateway running?)`,
          { mirror: options.mirror },
        );
      }
      throw new GatewayError(
        'MIRROR_REFRESH_UNAVAILABLE',
        `the refresh of ${options.mirror} did not finish: ${(err as Error).message}`,
        { mirror: options.mirror, state },
      );
    }
  } finally {
    await events.close().catch(() => undefined);
    await queue.close().catch(() => undefined);
    connection.disconnect();
    eventsConnection.disconnect();
  }
}
