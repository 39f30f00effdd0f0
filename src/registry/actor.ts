/** Who made a change, for the audit journal. */
export interface Actor {
  /** `portal`: a professional after a Pro Santé Connect login; `id` is the national id. */
  readonly kind: 'admin-api' | 'cli' | 'portal' | 'system';
  readonly id: string;
  /** Remote address of the caller, when it came over the network. */
  readonly remote?: string;
}

/** How a grant records its author: `<kind>:<id>`, e.g. `cli:alice`. */
export function actorLabel(actor: Actor): string {
  return `${actor.kind}:${actor.id}`;
}
