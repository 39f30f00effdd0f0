import type { Redis } from 'ioredis';
import type { Config } from '../config/index.js';
import type { AuditJournal, Logger } from '../observability/index.js';
import type { BalRegistry } from '../registry/index.js';

/** A mailbox's state in the national directory, as the publication module knows it. */
export interface PublicationView {
  readonly state: string;
  readonly reason?: string;
}

/** An entry of the national extraction listing one of the person's addresses. */
export interface NationalAddress {
  readonly address: string;
  readonly type: string;
  readonly organisation?: string;
}

/**
 * What the portal needs from the rest of the gateway, as the composition root wires it. The
 * rights and mailboxes are the registry's own operations (the admin API calls the same ones); the
 * rest are narrow ports so that the portal imports no other front end and no core internals.
 */
export interface PortalDeps {
  readonly config: Config;
  readonly redis: Redis;
  readonly registry: Pick<BalRegistry, 'get' | 'grants' | 'grant' | 'revoke' | 'balsForPerson' | 'activity'>;
  /** "Je garde cette adresse": a use of the mailbox (lifecycle return-on-use included). */
  readonly keep: (address: string, at: Date) => Promise<string>;
  /** Publication states (undefined when publication is off). */
  readonly publicationOf?: (address: string) => Promise<PublicationView | undefined>;
  /** The national extraction's addresses for a national id; undefined when none is in service. */
  readonly nationalAddresses?: (nationalId: string) => Promise<readonly NationalAddress[] | undefined>;
  /** Our certificate and key (PEM), read at each TLS context (re)build. */
  readonly tls: () => { readonly cert: string; readonly key: string };
  /** Where mail software connects: host name and the bound ports of IMAP and submission. */
  readonly clientEndpoints: () => ClientEndpoints;
  readonly journal: AuditJournal;
  readonly logger: Logger;
  readonly clock: { now(): Date };
}

export interface ClientEndpoints {
  readonly host: string;
  readonly imapTls: number;
  readonly imapStarttls: number;
  readonly submissionTls: number;
  readonly submissionStarttls: number;
}
