import type { SpoolRecipient } from './spool-entry.js';

/** The three DSN actions we report (RFC 3464 §2.3.3); `relayed`/`expanded` are not produced. */
export type DsnAction = 'failed' | 'delayed' | 'delivered';

export interface DsnPolicy {
  /**
   * Whether a recipient without NOTIFY gets delay notices. RFC 3461 §4.1 lets the MTA choose between
   * `FAILURE` and `FAILURE,DELAY` as the default. Default: true.
   */
  readonly delayByDefault?: boolean;
}

const NOTIFY_FOR: Readonly<Record<DsnAction, string>> = {
  failed: 'FAILURE',
  delayed: 'DELAY',
  delivered: 'SUCCESS',
};

/**
 * Whether this recipient asked for a DSN of this kind (RFC 3461 §4.1). NEVER silences everything;
 * an explicit list is obeyed to the letter; without NOTIFY, failures (and, by policy, delays) are
 * reported but success never is.
 */
export function dsnWanted(
  action: DsnAction,
  recipient: Pick<SpoolRecipient, 'dsn'>,
  policy: DsnPolicy = {},
): boolean {
  const notify = recipient.dsn?.notify?.map((v) => v.trim().toUpperCase());
  if (notify === undefined || notify.length === 0) {
    if (action === 'failed') return true;
    if (action === 'delayed') return policy.delayByDefault ?? true;
    return false;
  }
  if (notify.includes('NEVER')) return false;
  return notify.includes(NOTIFY_FOR[action]);
}
