import type { PublicationService } from '../publication/index.js';
import type { LifecyclePublisher, PublicationStateReader } from './lifecycle-ports.js';

/**
 * The lifecycle's view of the publication service. With publication off no state is known, so
 * nothing is warned or unpublished, and an unpublication or republication is refused.
 */
export function lifecyclePublicationPorts(publication: PublicationService | undefined): {
  readonly publisher: LifecyclePublisher;
  readonly states: PublicationStateReader;
} {
  const publisher: LifecyclePublisher = {
    unpublishInactive: async (address) => {
      if (!publication) return { ok: false, response: 'publication disabled' };
      const s = await publication.unpublish(address, 'inactive');
      return { ok: true, response: `queued (${s.state})` };
    },
    republish: async (address) => {
      if (!publication) return { ok: false, response: 'publication disabled' };
      const s = await publication.republish(address, 'inactive');
      return {
        ok: s.state === 'published' || s.target === 'published',
        response: `${s.state}${s.reason ? ` (${s.reason})` : ''}`,
      };
    },
  };
  const states: PublicationStateReader = {
    statesOf: async (bals) => {
      if (!publication) return bals.map(() => undefined);
      const found = await publication.statesOf(bals.map((b) => b.address));
      // Not `since`: it moves at each metadata republication and would restart inactivity periods.
      return found.map((s) => (s ? { state: s.state, redListed: s.reason === 'red-list' } : undefined));
    },
  };
  return { publisher, states };
}
