import { createHash, timingSafeEqual } from 'node:crypto';
import { GatewayError } from '../errors/index.js';
import type { Actor } from '../registry/index.js';

/**
 * Bearer-token check of the admin API. Both sides are hashed first so that the comparison takes the
 * same time whatever the length or content of the presented token (no timing oracle).
 */
export class BearerTokenCheck {
  readonly #expected: Buffer;

  constructor(token: string) {
    if (token.trim() === '') {
      throw new GatewayError(
        'CONFIG_INVALID',
        'the admin API token is empty; put a long random value in admin.tokenFile',
      );
    }
    this.#expected = digest(token);
  }

  /** Throws UNAUTHENTICATED unless the Authorization header carries the token. */
  check(authorization: string | undefined): void {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
    const presented = match?.[1];
    if (presented === undefined) {
      throw new GatewayError(
        'UNAUTHENTICATED',
        'this admin API requires "Authorization: Bearer <token>" (the token in admin.tokenFile; mssgw --token-file)',
      );
    }
    if (!timingSafeEqual(digest(presented), this.#expected)) {
      throw new GatewayError('UNAUTHENTICATED', 'the bearer token is not the one in admin.tokenFile');
    }
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** Header by which the CLI names who runs it (journaled; the token is what authorises). */
export const ACTOR_HEADER = 'x-mssgw-actor';

const ACTOR_ID = /^[A-Za-z0-9._@+-]{1,64}$/;

/**
 * Who made a change through the API, for the journal. The CLI sends `cli:<os user>`; anything else is
 * `admin-api`. The claimed id is recorded as given (sanitised), never trusted for authorisation.
 */
export function actorFromRequest(
  header: string | string[] | undefined,
  remote: string,
  authenticated: boolean,
): Actor {
  const value = Array.isArray(header) ? header[0] : header;
  const match = /^cli:(.+)$/.exec(value ?? '');
  const claimed = match?.[1];
  if (claimed !== undefined && ACTOR_ID.test(claimed)) return { kind: 'cli', id: claimed, remote };
  return { kind: 'admin-api', id: authenticated ? 'token' : 'anonymous', remote };
}
