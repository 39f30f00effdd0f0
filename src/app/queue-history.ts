import path from 'node:path';
import { LOCAL_DESTINATION, type QueueAdministration, parseJobId } from '../delivery/index.js';
import { GatewayError, isGatewayError } from '../errors/index.js';
import { searchJournal } from '../observability/index.js';

/**
 * A job leaves BullMQ once its destination is settled, so `queue show`/`retry`/`delete` on it used
 * to answer a bare "not found". The journal keeps what happened: this wrapper answers such a
 * request with the story instead — finished (`QUEUE_JOB_FINISHED`, HTTP 410: delivered, failed or
 * deleted, when and to whom), accepted but not settled here (another node's job), or never
 * received by this node within the journal's retention (`QUEUE_JOB_NOT_FOUND`, 404).
 */
export function withQueueHistory(admin: QueueAdministration, journalDir: string): QueueAdministration {
  const explained =
    <A extends unknown[], R>(call: (id: string, ...rest: A) => Promise<R>) =>
    async (id: string, ...rest: A): Promise<R> => {
      try {
        return await call(id, ...rest);
      } catch (err) {
        if (isGatewayError(err) && err.code === 'QUEUE_JOB_NOT_FOUND')
          throw await historyError(journalDir, id);
        throw err;
      }
    };
  return {
    list: (options) => admin.list(options),
    show: explained((id) => admin.show(id)),
    retry: explained((id, actor) => admin.retry(id, actor)),
    remove: explained((id, actor) => admin.remove(id, actor)),
  };
}

/** When a spool id was made (delivery/spool.ts newId: base-36 milliseconds on 9 characters, then 12 hex). */
export function spoolIdTime(spoolId: string): Date | undefined {
  if (!/^[0-9a-z]{9}[0-9a-f]{12}$/.test(spoolId)) return undefined;
  const ms = parseInt(spoolId.slice(0, 9), 36);
  return Number.isSafeInteger(ms) ? new Date(ms) : undefined;
}

interface Settled {
  readonly recipient: string;
  readonly outcome: string;
  readonly time: string;
  readonly result?: string;
}

const FINAL = new Set(['delivered', 'failed', 'expired']);
/** A day of margin: the journal's day files are UTC days, and the spool id is the receiving node's clock. */
const MARGIN_MS = 86_400_000;

async function historyError(journalDir: string, id: string): Promise<GatewayError> {
  const ref = parseJobId(id);
  const made = ref ? spoolIdTime(ref.spoolId) : undefined;
  if (!ref || !made) {
    return new GatewayError(
      'QUEUE_JOB_NOT_FOUND',
      `no queue job ${id}: a job id is <spool id>~<destination> (local or a domain), as mssgw queue list prints`,
      { id },
    );
  }
  const { spoolId, destination } = ref;
  let accepted: string | undefined;
  let deleted: { time: string; actor: unknown } | undefined;
  const settled = new Map<string, Settled>();
  const entries = searchJournal(path.resolve(journalDir), {
    contains: spoolId,
    since: new Date(made.getTime() - MARGIN_MS),
  });
  for await (const e of entries) {
    const event = String(e.event);
    const time = String(e.time);
    if ((event === 'smtp.mx.accepted' || event === 'smtp.submission.accepted') && e.spoolId === spoolId) {
      accepted ??= time;
    } else if (event === 'queue.deleted' && e.jobId === id) {
      deleted = { time, actor: e.actor };
    } else if (e.spoolId === spoolId && event.startsWith('delivery.')) {
      const [, kind, outcome] = event.split('.');
      const recipient = String(e.recipient);
      const here =
        destination === LOCAL_DESTINATION
          ? kind === 'local'
          : kind === 'relay' && recipient.toLowerCase().endsWith(`@${destination.toLowerCase()}`);
      if (here && outcome !== undefined && FINAL.has(outcome)) {
        settled.set(recipient, {
          recipient,
          outcome,
          time,
          ...(typeof e.result === 'string' ? { result: e.result } : {}),
        });
      }
    }
  }
  const story = [...settled.values()].map(
    (s) =>
      `${s.outcome} ${s.outcome === 'delivered' ? 'to' : 'for'} ${s.recipient} at ${s.time}${s.outcome === 'delivered' || !s.result ? '' : ` (${s.result})`}`,
  );
  if (deleted) {
    story.unshift(`deleted by ${actorName(deleted.actor)} at ${deleted.time}`);
  }
  if (story.length > 0) {
    return new GatewayError('QUEUE_JOB_FINISHED', `job ${id} is finished: ${story.join('; ')}`, { id });
  }
  if (accepted) {
    return new GatewayError(
      'QUEUE_JOB_NOT_FOUND',
      `no queue job ${id}: message ${spoolId} was accepted at ${accepted}, but this node's journal records no delivery for ${destination}; another node may hold it (mssgw queue list)`,
      { id },
    );
  }
  return new GatewayError(
    'QUEUE_JOB_NOT_FOUND',
    `no queue job ${id}: this node never received message ${spoolId} (nothing in its journal since ${made.toISOString().slice(0, 10)})`,
    { id },
  );
}

function actorName(actor: unknown): string {
  if (actor !== null && typeof actor === 'object' && 'kind' in actor && 'id' in actor)
    return `${String(actor.kind)} ${String(actor.id)}`;
  return 'the operator';
}
