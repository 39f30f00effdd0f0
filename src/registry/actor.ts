/** Who made a change, for the audit journal. */
export interface Actor {
  readonly kind: 'admin-api' | 'cli' | 'system';
  readonly id: string;
  /** Remote address of the caller, when it came over the network. */
  readonly remote?: string;
}

/** How a grant records its author: `<kind>:<id>`, e.g. `cli:alice`. */
export function actorLabel(actor: Actor): string {
  return `${actor.kind}:${actor.id}`;
}
