import type { FastifyError, FastifySchemaValidationError } from 'fastify';
import { ERROR_CODES, isGatewayError, type ErrorCode } from '../errors/index.js';

/**
 * RFC 9457 problem details: the one shape of every error the admin API answers. `type` names the
 * catalogue code as a URN so a client can switch on it; `code` repeats it for convenience; `detail`
 * says what to fix. Never a stack trace or an internal message of a dependency.
 */
export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: ErrorCode;
  /** For request validation errors: the failing field and where it was (body, querystring, params). */
  readonly field?: string;
  readonly location?: string;
  /** The request id, to find the matching log line. */
  readonly instance?: string;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
export const PROBLEM_TYPE_PREFIX = 'urn:mssgw:error:';

export function problem(
  code: ErrorCode,
  detail: string,
  extra: { field?: string; location?: string; instance?: string } = {},
): Problem {
  const info = ERROR_CODES[code];
  return {
    type: `${PROBLEM_TYPE_PREFIX}${code}`,
    title: info.summary,
    status: info.http,
    detail,
    code,
    ...extra,
  };
}

/** True when the problem is our fault (to be logged with its cause at error level). */
export function isServerProblem(p: Problem): boolean {
  return ERROR_CODES[p.code].side === 'server';
}

/**
 * Maps anything a route or fastify itself throws to a problem. Gateway errors keep their code and
 * message (written for the operator); fastify's own errors are classified by their status code;
 * anything else is an internal error whose message is not shown (it may expose internals).
 */
export function toProblem(err: unknown, requestId: string): Problem {
  const instance = `urn:mssgw:request:${requestId}`;
  if (isGatewayError(err)) return problem(err.code, err.message, { instance });
  if (isFastifyError(err)) {
    if (err.validation) return validationProblem(err.validation, err.validationContext, instance);
    const status = err.statusCode ?? 500;
    if (status === 404) return problem('ROUTE_NOT_FOUND', err.message, { instance });
    if (status === 413) return problem('REQUEST_TOO_LARGE', err.message, { instance });
    if (status === 415) {
      return problem(
        'REQUEST_UNSUPPORTED_MEDIA_TYPE',
        'send the body as JSON with Content-Type: application/json',
        {
          instance,
        },
      );
    }
    // Malformed JSON, empty JSON body, bad Content-Length...: fastify's message names the problem.
    if (status >= 400 && status < 500) return problem('REQUEST_INVALID', err.message, { instance });
  }
  return problem('INTERNAL', `internal error; the gateway log has the cause under request id ${requestId}`, {
    instance,
  });
}

function isFastifyError(err: unknown): err is FastifyError {
  return err instanceof Error && ('statusCode' in err || 'validation' in err);
}

function validationProblem(
  errors: readonly FastifySchemaValidationError[],
  context: string | undefined,
  instance: string,
): Problem {
  const location = context ?? 'request';
  const first = errors[0];
  if (!first) return problem('REQUEST_INVALID', `the ${location} is not valid`, { location, instance });
  const params = first.params;
  const pathField = first.instancePath.replace(/^\//, '').replaceAll('/', '.');
  const named = params.missingProperty ?? params.additionalProperty;
  const field = typeof named === 'string' ? (pathField ? `${pathField}.${named}` : named) : pathField;
  const where = field ? `${location}.${field}` : location;
  let detail: string;
  switch (first.keyword) {
    case 'required':
      detail = `${where} is required`;
      break;
    case 'additionalProperties':
      detail = `${where} is not a known field; remove it`;
      break;
    default:
      detail = `${where} ${first.message ?? 'is not valid'}`;
  }
  return problem('REQUEST_INVALID', detail, { ...(field ? { field } : {}), location, instance });
}
