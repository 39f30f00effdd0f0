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
