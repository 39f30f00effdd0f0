import type { BalType } from '../registry/index.js';

/**
 * `GET /v1/bals/:address/secret`: whether the mailbox has a secret, never the secret or its hash.
 * Shared by the route (bal-secrets.ts) and the client, which must not depend on the server side.
 */
export interface SecretStatus {
  readonly address: string;
  readonly type: BalType;
  readonly hasSecret: boolean;
  /** The mailbox's type is in `auth.passwordTypes`: PLAIN/LOGIN logins may use the secret. */
  readonly allowed: boolean;
}
