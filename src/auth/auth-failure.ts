import { GatewayError, type ErrorCode } from '../errors/index.js';

/**
 * A refused authentication step: a code from the catalogue plus a short, bounded `reason` (a metric
 * label and journal field, e.g. `token_expired`, `xoauth2_no_user`). The message explains the refusal
 * to an operator reading the logs; it never contains a token, a password or a secret.
 */
export class AuthFailure extends GatewayError {
  readonly reason: string;

  constructor(code: ErrorCode, reason: string, message?: string, details: Record<string, unknown> = {}) {
    super(code, message, { ...details, reason });
    this.name = 'AuthFailure';
    this.reason = reason;
  }
}

export function isAuthFailure(err: unknown): err is AuthFailure {
  return err instanceof AuthFailure;
}
