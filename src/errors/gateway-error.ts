import { ERROR_CODES, type ErrorCode, type ErrorCodeInfo } from './error-codes.js';

/**
 * The base error of the gateway: a code from the catalogue, plus the detail a human needs to fix the
 * problem. `message` must never contain a token, a password, a key or message content.
 */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly info: ErrorCodeInfo;
  /** Structured, safe-to-log context (key paths, addresses, DNs). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message?: string,
    details: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    const info = ERROR_CODES[code];
    super(message ?? info.summary, options);
    this.name = 'GatewayError';
    this.code = code;
    this.info = info;
    this.details = details;
  }

  get temporary(): boolean {
    return this.info.temporary;
  }
}

export function isGatewayError(err: unknown): err is GatewayError {
  return err instanceof GatewayError;
}

/** Wraps anything thrown into a GatewayError, keeping the original as `cause`. */
export function toGatewayError(err: unknown, fallback: ErrorCode = 'INTERNAL'): GatewayError {
  if (err instanceof GatewayError) return err;
  return new GatewayError(fallback, undefined, {}, { cause: err });
}
