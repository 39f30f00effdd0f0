import type { Redis } from 'ioredis';
import type { Gateway } from '../../src/app/index.js';

/**
 * The events BullMQ recorded in one of a gateway's queues (`local` or `relay`), oldest first: its
 * events stream, where every add, delay, move and completion writes one.
 */
export async function queueEvents(
  redis: Redis,
  gw: Gateway,
  queue: 'local' | 'relay',
): Promise<Array<{ event: string; jobId: string }>> {
  const key = `${gw.config.redis.prefix}bull:${queue}@${gw.config.node.id}:events`;
  return (await redis.xrange(key, '-', '+')).map(([, fields]) => {
    const f = new Map<string, string>();
    for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
    return { event: f.get('event') ?? '', jobId: f.get('jobId') ?? '' };
  });
}
