import { GatewayError, isGatewayError } from '../errors/index.js';

/** Runs a Redis call; anything Redis throws means the registry is unavailable to us. */
export async function callRedis<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw isGatewayError(err) ? err : registryUnavailable(err);
  }
}

export function registryUnavailable(err: unknown): GatewayError {
  const why = err instanceof Error ? err.message : String(err);
  return new GatewayError(
    'REGISTRY_UNAVAILABLE',
    `mailbox registry (Redis) unavailable: ${why}`,
    {},
    { cause: err },
  );
}

export function balNotFound(address: string): GatewayError {
  return new GatewayError('BAL_NOT_FOUND', `no mailbox ${address} in the registry`, { address });
}

/** Replies of a pipeline, failing as a whole if any command failed. */
export function pipelineReplies(replies: [Error | null, unknown][] | null): unknown[] {
  return (replies ?? []).map(([err, reply]) => {
    if (err) throw registryUnavailable(err);
    return reply;
  });
}
