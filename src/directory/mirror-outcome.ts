import { GatewayError } from '../errors/index.js';

/**
 * The vocabulary of a mirror refresh: its outcome and a bounded reason, used alike by the
 * `mssgw_mirror_refresh_total` labels, the journal and `mssgw directory status`.
 */
export type RefreshOutcome = 'accepted' | 'unchanged' | 'refused' | 'failed' | 'skipped';

/** Why a downloaded copy was not put in service (the last good copy stays). */
export type RefusalReason =
  | 'malformed'
  | 'empty'
  | 'shrink'
  | 'invalid_lines'
  | 'too_large'
  | 'bad_signature'
  /** A CRL from another authority than the one the mirror is for, or from one we do not trust. */
  | 'wrong_issuer'
  /** A CRL whose nextUpdate has passed: OpenSSL would fail every certificate of its authority. */
  | 'expired'
  | 'older';

/** Why no copy could be obtained at all. */
export type FailureReason =
  'unreachable' | 'timeout' | 'http_status' | 'source_missing' | 'store' | 'internal';

export type RefreshReason =
  | RefusalReason
  | FailureReason
  /** accepted */
  | 'ok'
  /** accepted, but a CRL whose nextUpdate is already past (still newer than the one in service) */
  | 'stale'
  /** unchanged: same bytes as the copy in service */
  | 'same_content'
  /** skipped: another process is refreshing this mirror, or published a newer copy meanwhile */
  | 'busy'
  | 'superseded';

export interface RefreshResult {
  readonly mirror: string;
  readonly outcome: RefreshOutcome;
  readonly reason: RefreshReason;
  /** Version in service after the refresh (absent when there is none yet). */
  readonly version?: number;
  readonly entries?: number;
  readonly added?: number;
  readonly removed?: number;
  /** What went wrong, for people (refused, failed). */
  readonly error?: string;
}

/** A refusal: the copy is wrong; the error names the mirror and the reason (details.reason). */
export function refusal(reason: RefusalReason, message: string, details: Record<string, unknown> = {}) {
  return new GatewayError('MIRROR_COPY_REFUSED', message, { ...details, reason });
}

/** A failure to obtain a copy (network, HTTP status, missing file). */
export function sourceFailure(reason: FailureReason, message: string, cause?: unknown) {
  return new GatewayError('MIRROR_SOURCE_UNAVAILABLE', message, { reason }, cause ? { cause } : undefined);
}

/** The reason carried by a refusal or failure built above, if `err` is one. */
export function reasonOf(err: unknown): RefusalReason | FailureReason | undefined {
  if (!(err instanceof GatewayError)) return undefined;
  if (err.code !== 'MIRROR_COPY_REFUSED' && err.code !== 'MIRROR_SOURCE_UNAVAILABLE') return undefined;
  return err.details.reason as RefusalReason | FailureReason;
}
