import { addressKey, normalizeDomain } from '../shared/index.js';
import type { BalRegistry } from './bal-registry.js';

/**
 * The active mailboxes a person owns (not those they co-manage): where the `Sender:` of a message
 * they submit from another mailbox may point.
 */
export async function ownedMailboxes(
  registry: Pick<BalRegistry, 'balsForPerson'>,
  nationalId: string,
): Promise<string[]> {
  const bals = await registry.balsForPerson(nationalId);
  return bals.filter((b) => b.right === 'owner' && b.status === 'active').map((b) => b.bal);
}

/**
 * A person's own MSSanté addresses, where a delegate's `Sender:` may point (issue #13): the active
 * mailboxes she owns here, then those the national extraction lists for her at other operators.
 * Without the extraction (not mirrored, or Redis trouble) only ours count.
 */
export async function ownedAddresses(
  registry: Pick<BalRegistry, 'balsForPerson'>,
  nationalId: string,
  national: {
    readonly addressesOf: (
      nationalId: string,
    ) => Promise<ReadonlyArray<{ readonly address: string }> | undefined>;
    readonly ourDomains: readonly string[];
  },
): Promise<string[]> {
  const [here, listed] = await Promise.all([
    ownedMailboxes(registry, nationalId),
    national.addressesOf(nationalId).catch(() => undefined),
  ]);
  const ours = new Set(national.ourDomains.map((d) => normalizeDomain(d) ?? d));
  const elsewhere = (listed ?? [])
    .map((e) => addressKey(e.address))
    .filter((a) => !ours.has(a.slice(a.lastIndexOf('@') + 1)));
  return [...here, ...elsewhere];
}
