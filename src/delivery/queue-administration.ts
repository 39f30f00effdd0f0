import type { AuditJournal } from '../observability/index.js';
import type { Actor } from '../registry/index.js';
import type { DeliveryQueue, QueueEntry } from './delivery-queue.js';
import type { DestinationWorker } from './destination-worker.js';

export interface QueueAdministrationDeps {
  readonly queue: DeliveryQueue;
  readonly worker: DestinationWorker;
  readonly journal: AuditJournal;
}

/** The operator's view of the delivery queue (the admin API's queue routes). */
export interface QueueAdministration {
  list(options: { states?: readonly string[]; limit?: number }): Promise<QueueEntry[]>;
  show(id: string): Promise<QueueEntry>;
  retry(id: string, actor: Actor): Promise<QueueEntry>;
  remove(id: string, actor: Actor): Promise<QueueEntry>;
}

/**
 * The operator's actions on queued deliveries, each journalled. Removing a job is not only a
 * BullMQ removal: its pending recipients are abandoned, so that the sender gets the failure DSN and
 * the spool entry settles if this was its last destination.
 */
export function queueAdministration(d: QueueAdministrationDeps): QueueAdministration {
  const { queue, worker, journal } = d;
  return {
    list: (options) => queue.list(options),
    show: (id) => queue.show(id),
    retry: async (id, actor) => {
      const job = await queue.retry(id);
      journal.record({ event: 'queue.retried', jobId: id, actor });
      return job;
    },
    remove: async (id, actor) => {
      const job = await queue.show(id);
      await queue.remove(id);
      await worker.abandon(job.data.spoolId, job.data.destination, 'deleted by the operator');
      journal.record({ event: 'queue.deleted', jobId: id, actor });
      return job;
    },
  };
}
