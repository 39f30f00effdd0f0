/**
 * Every Redis key of the lifecycle and the indicators, in one place. `<prefix>` is the
 * configuration's `redis.prefix`; addresses never contain `:` (registry-keys.ts), days are
 * `YYYY-MM-DD` in `lifecycle.timeZone`.
 *
 * | key                                   | type   | content                                                    |
 * |---------------------------------------|--------|------------------------------------------------------------|
 * | `lifecycle:warned`                    | hash   | address → ms of the last inactivity warning put in the BAL  |
 * | `lifecycle:warned-to:<address>`       | hash   | recipient → start (ms) of the period its warning was for    |
 * | `lifecycle:unpublished-inactive`      | set    | BALs unpublished (or being unpublished) for inactivity      |
 * | `lifecycle:mail-purged`               | set    | deleted BALs whose mail was purged from the store           |
 * | `lifecycle:lock`                      | string | token of the process running the daily job (with a TTL)     |
 * | `lifecycle:run:<runId>`               | hash   | one daily run: phase, asOf, total, cursor, inflight, counts |
 * | `lifecycle:run:<runId>:plan`          | list   | the run's decisions to carry out (JSON), in order           |
 * | `lifecycle:run:<runId>:draft`         | list   | the plan while it is being built                            |
 * | `indicators:<day>`                    | set    | BALs with indicators that day (the export's index)          |
 * | `indicators:<day>:<address>`          | hash   | the BAL's counters of the day (indicator-fields.ts)         |
 * | `indicators:<day>:<address>:software` | hash   | `<direction>:<X-MSS-NIL>` → messages, bounded per day       |
 * | `indicators:<day>:<address>:cda`      | hash   | `<direction>:<CDA code>` → messages, bounded per day        |
 *
 * Run keys expire some days after the run; indicator keys after `lifecycle.indicatorsRetentionDays`.
 */
export class LifecycleKeys {
  readonly prefix: string;

  constructor(prefix: string) {
    this.prefix = prefix;
  }

  get warned(): string {
    return `${this.prefix}lifecycle:warned`;
  }

  /** The channels (recipients) of a mailbox's warning already sent, by inactivity period. */
  warnedTo(address: string): string {
    return `${this.prefix}lifecycle:warned-to:${address}`;
  }

  get unpublishedInactive(): string {
    return `${this.prefix}lifecycle:unpublished-inactive`;
  }

  get mailPurged(): string {
    return `${this.prefix}lifecycle:mail-purged`;
  }

  get lock(): string {
    return `${this.prefix}lifecycle:lock`;
  }

  run(runId: string): string {
    return `${this.prefix}lifecycle:run:${runId}`;
  }

  plan(runId: string): string {
    return `${this.prefix}lifecycle:run:${runId}:plan`;
  }

  draft(runId: string): string {
    return `${this.prefix}lifecycle:run:${runId}:draft`;
  }

  indicatorDay(day: string): string {
    return `${this.prefix}indicators:${day}`;
  }

  indicators(day: string, address: string): string {
    return `${this.prefix}indicators:${day}:${address}`;
  }

  software(day: string, address: string): string {
    return `${this.prefix}indicators:${day}:${address}:software`;
  }

  cda(day: string, address: string): string {
    return `${this.prefix}indicators:${day}:${address}:cda`;
  }
}
