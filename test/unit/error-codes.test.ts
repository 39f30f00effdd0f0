import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AdminApiError, AdminUnreachableError } from '../../src/admin/index.js';
import { IssuerUnavailableError } from '../../src/auth/index.js';
import { DerError } from '../../src/directory/der.js';
import {
  ERROR_CODES,
  GatewayError,
  isGatewayError,
  redisErrorKind,
  type ErrorCode,
} from '../../src/errors/index.js';
import { RELAY_FAILURES, RelayError, type RelayFailureReason } from '../../src/relay/index.js';
import { tlsFailureReason } from '../../src/smtp/mx-transaction.js';
import { LmtpConnectionError } from '../../src/store/lmtp-wire.js';

const codes = Object.keys(ERROR_CODES) as ErrorCode[];

describe('error catalogue', () => {
  it('names each code once, in upper snake case', () => {
    // Object keys cannot repeat at run time, so count them in the source: a repeated key would
    // silently replace the first entry.
    const source = readFileSync(new URL('../../src/errors/error-codes.ts', import.meta.url), 'utf8');
    const declared = [...source.matchAll(/^ {2}([A-Z][A-Z0-9_]*): \{/gm)].map((m) => m[1]);
    expect(new Set(declared).size).toBe(declared.length);
    expect([...declared].sort()).toEqual([...codes].sort());
    for (const code of codes) expect(code).toMatch(/^[A-Z][A-Z0-9_]*$/);
  });

  it.each(codes)('%s has a fault side, temporariness, an HTTP status and a summary', (code) => {
    const info = ERROR_CODES[code];
    expect(['client', 'server', 'remote']).toContain(info.side);
    expect(typeof info.temporary).toBe('boolean');
    expect(Number.isInteger(info.http)).toBe(true);
    expect(info.http).toBeGreaterThanOrEqual(400);
    expect(info.http).toBeLessThan(600);
    // A client's fault is never answered as ours (5xx).
    if (info.side === 'client') expect(info.http).toBeLessThan(500);
    expect(info.summary.trim()).not.toBe('');
  });

  it('builds a GatewayError from a code: its info, and the summary unless a message is given', () => {
    const plain = new GatewayError('STORE_UNAVAILABLE');
    expect(plain.message).toBe(ERROR_CODES.STORE_UNAVAILABLE.summary);
    expect(plain.info).toBe(ERROR_CODES.STORE_UNAVAILABLE);
    expect(plain.temporary).toBe(true);
    expect(new GatewayError('CLI_INPUT_INVALID', 'standard input is empty').message).toBe(
      'standard input is empty',
    );
  });
});

describe('errors that carry data extend the catalogue error', () => {
  it.each<[string, GatewayError, ErrorCode]>([
    ['AdminApiError', new AdminApiError('BAL_NOT_FOUND', 404, 'mailbox not found'), 'ADMIN_API_REFUSED'],
    [
      'AdminUnreachableError',
      new AdminUnreachableError('http://127.0.0.1:1', 'ECONNREFUSED'),
      'ADMIN_API_UNREACHABLE',
    ],
    ['IssuerUnavailableError', new IssuerUnavailableError('http_503'), 'AUTH_ISSUER_UNAVAILABLE'],
    ['LmtpConnectionError', new LmtpConnectionError('closed', 'connection closed'), 'STORE_UNAVAILABLE'],
    ['DerError', new DerError('truncated DER'), 'DER_INVALID'],
  ])('%s', (_name, err, code) => {
    expect(isGatewayError(err)).toBe(true);
    expect(err.code).toBe(code);
  });

  it('keeps the wording the command line prints for a refusal of the admin API', () => {
    const err = new AdminApiError('BAL_NOT_FOUND', 404, 'mailbox not found');
    expect(err.message).toBe('mailbox not found (BAL_NOT_FOUND)');
    expect(err.problemCode).toBe('BAL_NOT_FOUND');
  });

  it.each(Object.keys(RELAY_FAILURES) as RelayFailureReason[])(
    'RelayError %s: temporary as RELAY_FAILURES says, through its code',
    (reason) => {
      const err = new RelayError(reason, { host: 'mx.peer.test' });
      expect(err.temporary).toBe(RELAY_FAILURES[reason].temporary);
      expect(ERROR_CODES[err.code].temporary).toBe(RELAY_FAILURES[reason].temporary);
      expect(err.message).toBe(RELAY_FAILURES[reason].summary);
      expect(err.details.host).toBe('mx.peer.test');
    },
  );
});

/** An error as ioredis raises a Redis error reply (its class is named ReplyError). */
class ReplyError extends Error {
  override readonly name = 'ReplyError';
}

describe('redisErrorKind: the protocol code of a Redis error reply', () => {
  it.each<[unknown, string | undefined]>([
    [new ReplyError('NOSCRIPT No matching script. Please use EVAL.'), 'NOSCRIPT'],
    [new ReplyError("READONLY You can't write against a read only replica."), 'READONLY'],
    [new ReplyError('LOADING'), 'LOADING'],
    [new ReplyError('ERR wrong number of arguments'), 'ERR'],
    // Not an error reply: a client-side failure with similar text decides nothing.
    [new Error('NOSCRIPT No matching script.'), undefined],
    [new ReplyError('no upper-case kind'), undefined],
    ['NOSCRIPT', undefined],
    [undefined, undefined],
  ])('%s → %s', (err, kind) => {
    expect(redisErrorKind(err)).toBe(kind);
  });
});

describe('tlsFailureReason: decided on the error code, whatever the message says', () => {
  const failure = (code: string | undefined, message = 'Failed to establish TLS session') =>
    Object.assign(new Error(message), code === undefined ? {} : { code });
  it.each<[string | undefined, string, string | undefined]>([
    ['ERR_SSL_UNSUPPORTED_PROTOCOL', 'unsupported protocol', 'protocol'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'wrong version number', 'protocol'],
    ['ERR_SSL_NO_SHARED_CIPHER', 'no shared cipher', 'cipher'],
    ['ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE', 'peer did not return a certificate', 'certificate'],
    // smtp-server rewrites the message of what it recognises; the code is kept.
    ['ERR_SSL_NO_SHARED_CIPHER', 'Failed to establish TLS session', 'cipher'],
    ['ERR_TLS_HANDSHAKE_TIMEOUT', 'TLS handshake timeout', 'other'],
    ['TLSError', 'Failed to establish TLS session', 'other'],
    ['SocketError', 'Socket closed while initiating TLS', 'other'],
    ['ECONNRESET', 'read ECONNRESET', undefined],
    [undefined, 'certificate text in a message decides nothing', undefined],
  ])('%s (%s) → %s', (code, message, reason) => {
    expect(tlsFailureReason(failure(code, message))).toBe(reason);
  });
});
