import { createHash } from 'node:crypto';

/**
 * Every Redis key of the registry, in one place. `<prefix>` is the configuration's `redis.prefix`.
 * Addresses contain `@` and never `:`, so no address-derived key can collide with a fixed one.
 *
 * | key                             | type | content                                                        |
 * |---------------------------------|------|----------------------------------------------------------------|
 * | `bal:<address>`                 | hash | the BAL (bal-record.ts)                                        |
 * | `bals`                          | zset | every address, score 0 (ordered by address)                    |
 * | `bals:counts`                   | hash | count per `status:type`                                        |
 * | `bals:rights-expiry`            | zset | `<address> <subject key>` of grants with an expiry, score = ms |
 * | `bals:last-activity`            | zset | address, score = last activity (ms); live BALs only            |
 * | `rights:<address>`              | hash | subject key (`person:<id>`, `certificate:<dn>`) → grant JSON   |
 * | `person-bals:<nationalId>`      | set  | addresses where the person holds a grant                       |
 * | `person-owns:<nationalId>`      | set  | PER addresses the person owns (not deleted)                    |
 * | `certificate-bals:<sha1(dn)>`   | set  | addresses a certificate is bound to (canonical DN, hashed)     |
 * | `activity:<address>`            | hash | `imap`, `submission`, `application`, `lastActivityAt` (ms)     |
 *
 * The Lua scripts derive the reverse-index keys of a grant from the prefix and the subject key
 * (as BullMQ's scripts do), so these names are repeated in rights-scripts.ts.
 */
export class RegistryKeys {
  readonly prefix: string;

  constructor(prefix: string) {
    this.prefix = prefix;
  }

  bal(address: string): string {
    return `${this.prefix}bal:${address}`;
  }

  get index(): string {
    return `${this.prefix}bals`;
  }

  get counts(): string {
    return `${this.prefix}bals:counts`;
  }

  /**
   * Pub/sub channel: a mailbox address whenever who may use it changed (a right granted, revoked or
   * expired, the mailbox suspended or deleted). Every process re-checks its open sessions on it.
   */
  get accessChannel(): string {
    return `${this.prefix}registry:access-changed`;
  }

  get rightsExpiry(): string {
    return `${this.prefix}bals:rights-expiry`;
  }

  get lastActivity(): string {
    return `${this.prefix}bals:last-activity`;
  }

  rights(address: string): string {
    return `${this.prefix}rights:${address}`;
  }

  personBals(nationalId: string): string {
    return `${this.prefix}person-bals:${nationalId}`;
  }

  personOwns(nationalId: string): string {
    return `${this.prefix}person-owns:${nationalId}`;
  }

  /** A DN can be long and hold any character: the key names its SHA-1 (Lua's redis.sha1hex). */
  certificateBals(canonicalDn: string): string {
    return `${this.prefix}certificate-bals:${createHash('sha1').update(canonicalDn, 'utf8').digest('hex')}`;
  }

  activity(address: string): string {
    return `${this.prefix}activity:${address}`;
  }
}
