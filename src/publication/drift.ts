import type { BalType } from '../registry/index.js';
import type { PublicationStore } from './publication-store.js';
import type { PublicationStateName } from './publication-state.js';

/**
 * Reconciliation of what we believe the national directory holds with what it publishes: the daily
 * BAL extraction (MSSANTE.md "Bulk extraction"). The mirror of the extraction implements
 * ExtractionView; this module only asks it about our own addresses, a batch at a time.
 */
export interface ExtractionView {
  /** For each address (lower-case), whether the extraction in service lists it. */
  has(addresses: string[]): Promise<boolean[]>;
}

/** Only PER and ORG rows appear in the extraction (MSSANTE.md): APP and CAB mailboxes cannot be checked. */
export const EXTRACTION_BAL_TYPES: readonly BalType[] = ['PER', 'ORG'];

/** Addresses listed in a report, per kind, at most; the counts are always exact. */
export const DRIFT_LISTED_MAX = 1000;

export interface DriftKind {
  readonly count: number;
  /** In the order found, at most DRIFT_LISTED_MAX. */
  readonly addresses: readonly string[];
}

export interface DriftReport {
  readonly generatedAt: string;
  /** When the extraction was made, if known: changes since then are not judged. */
  readonly extractionAsOf?: string;
  /** Mailboxes compared: published ones and unpublished ones. */
  readonly compared: { readonly published: number; readonly unpublished: number };
  /** We believe them published, the extraction does not list them. */
  readonly publishedMissing: DriftKind;
  /** We believe them unpublished, the extraction still lists them. */
  readonly unpublishedPresent: DriftKind;
  /** Not compared: changed after the extraction was made, or of a type it never lists. */
  readonly skipped: { readonly recent: number; readonly typeNotExtracted: number };
}

export interface DriftOptions {
  readonly now: Date;
  readonly asOf?: Date;
  /** Addresses per question to the extraction; default 500. */
  readonly batch?: number;
}

const UNPUBLISHED_STATES: readonly PublicationStateName[] = ['unpublished', 'unpublished-inactive'];

/**
 * Compares every mailbox in a settled state with the extraction. Pending and failed mailboxes are
 * in flux and left out; so are mailboxes whose state changed after `asOf` and types the extraction
 * does not carry.
 */
export async function computeDrift(
  store: PublicationStore,
  extraction: ExtractionView,
  options: DriftOptions,
): Promise<DriftReport> {
  const batch = options.batch ?? 500;
  const skipped = { recent: 0, typeNotExtracted: 0 };
  const compare = async (states: readonly PublicationStateName[], listedMeansDrift: boolean) => {
    const found: string[] = [];
    let count = 0;
    let compared = 0;
    for (const state of states) {
      for await (const members of store.members(state, batch)) {
        const facts = await store.typesAndSince(members);
        const candidates = members.filter((_, i) => {
          const { type, since } = facts[i] ?? {};
          if (type === undefined || !(EXTRACTION_BAL_TYPES as readonly string[]).includes(type)) {
            skipped.typeNotExtracted += 1;
            return false;
          }
          if (
            options.asOf !== undefined &&
            since !== undefined &&
            Date.parse(since) > options.asOf.getTime()
          ) {
            skipped.recent += 1;
            return false;
          }
          return true;
        });
        if (candidates.length === 0) continue;
        compared += candidates.length;
        const listed = await extraction.has(candidates);
        candidates.forEach((address, i) => {
          if ((listed[i] === true) !== listedMeansDrift) return;
          count += 1;
          if (found.length < DRIFT_LISTED_MAX) found.push(address);
        });
      }
    }
    return { kind: { count, addresses: found }, compared };
  };
  const published = await compare(['published'], false);
  const unpublished = await compare(UNPUBLISHED_STATES, true);
  return {
    generatedAt: options.now.toISOString(),
    ...(options.asOf === undefined ? {} : { extractionAsOf: options.asOf.toISOString() }),
    compared: { published: published.compared, unpublished: unpublished.compared },
    publishedMissing: published.kind,
    unpublishedPresent: unpublished.kind,
    skipped,
  };
}
