import { Redis } from 'ioredis';

/**
 * Diagnostics for the suite: a Redis command that fails without a handler (an unhandled rejection,
 * which fails the run) shows, under ioredis's own frames, where our code sent it. ioredis's
 * `showFriendlyErrorStack` does not cover commands flushed by a closed connection ("Connection is
 * closed."), which are the ones a stop can catch in flight.
 */
interface SentCommand {
  readonly name: string;
  reject: (err: unknown) => void;
}
const proto = Redis.prototype as unknown as {
  sendCommand: (this: Redis, command: SentCommand, stream?: unknown) => unknown;
};
const original = proto.sendCommand;
proto.sendCommand = function sendCommand(this: Redis, command: SentCommand, stream?: unknown) {
  const origin = new Error(`redis ${command.name} sent from`).stack ?? '';
  // Annotates the error as it is rejected, without handling the rejection (the caller still must).
  const reject = command.reject;
  command.reject = (err: unknown) => {
    if (err instanceof Error && !err.stack?.includes(' sent from')) err.stack = `${err.stack}\n${origin}`;
    reject(err);
  };
  return original.call(this, command, stream);
};
