/**
 * The kind of a Redis error reply: the upper-case word RESP puts first in it (`NOSCRIPT No matching
 * script`, `READONLY You can't write against a read only replica`). That word is the protocol's
 * error code, not free text; this is the one place that reads it, so that no caller matches on an
 * error's message. Undefined for anything that is not an error reply (ioredis raises those as
 * `ReplyError`).
 */
export function redisErrorKind(err: unknown): string | undefined {
  if (!(err instanceof Error) || err.name !== 'ReplyError') return undefined;
  return /^([A-Z][A-Z_]*)(?: |$)/.exec(err.message)?.[1];
}
