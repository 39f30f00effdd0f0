import type net from 'node:net';

/**
 * After login the gateway only carries bytes (ARCHITECTURE.md §5 "IMAP": piped unchanged). Each
 * direction is a stream pipe, so backpressure holds both ways; an end of stream in one direction is
 * passed on as a half-close (the other direction keeps flowing until its own end), an error on either
 * side closes both. The idle limit counts traffic either way: the client socket's inactivity timer is
 * reset by what it reads (from the client) and by what it writes (from the store).
 */
export type PipeEnd =
  | 'client-closed'
  | 'store-closed'
  | 'client-error'
  | 'store-error'
  | 'idle-timeout'
  | 'session-limit'
  | 'access-withdrawn'
  | 'shutdown';

export interface PipeResult {
  readonly end: PipeEnd;
  readonly bytesFromClient: number;
  readonly bytesToClient: number;
}

export interface StorePipeOptions {
  /** Bytes the client sent after its login command, before the pipe existed: they go to the store. */
  readonly clientLeftover: Buffer;
  /** Bytes the store sent after its tagged OK: they go to the client. */
  readonly storeLeftover: Buffer;
  readonly idleTimeoutMs: number;
  /** Written to the client when the idle limit ends the session (an untagged BYE). */
  readonly idleFarewell: string;
  /** Longest session, whatever the traffic; then `sessionFarewell` and the end. */
  readonly maxSessionMs: number;
  readonly sessionFarewell: string;
}

export class StorePipe {
  readonly done: Promise<PipeResult>;
  readonly #client: net.Socket;
  readonly #store: net.Socket;
  #end: PipeEnd | undefined;
  #fromClient = 0;
  #toClient = 0;

  constructor(client: net.Socket, store: net.Socket, options: StorePipeOptions) {
    this.#client = client;
    this.#store = store;
    this.done = Promise.all([closed(client), closed(store)]).then(() => ({
      end: this.#end ?? 'client-closed',
      bytesFromClient: this.#fromClient,
      bytesToClient: this.#toClient,
    }));
    this.#start(options);
  }

  /** Ends the session with `bye` (an untagged BYE): the right it used went away. */
  cut(bye: string): void {
    this.#farewell('access-withdrawn', bye);
  }

  /** Ends the session now (shutdown after the grace period). */
  shutdown(): void {
    this.#end ??= 'shutdown';
    this.#store.destroy();
    this.#client.destroy();
  }

  #start(options: StorePipeOptions): void {
    const client = this.#client;
    const store = this.#store;
    client.on('data', (chunk: Buffer) => (this.#fromClient += chunk.length));
    store.on('data', (chunk: Buffer) => (this.#toClient += chunk.length));
    client.on('error', () => this.#fail('client-error'));
    store.on('error', () => this.#fail('store-error'));
    client.once('end', () => (this.#end ??= 'client-closed'));
    store.once('end', () => (this.#end ??= 'store-closed'));
    // A side that closed without a clean end (reset, destroy) takes the other one with it.
    client.once('close', () => store.destroySoon());
    store.once('close', () => (store.readableEnded ? undefined : client.destroy()));
    if (options.storeLeftover.length > 0) {
      this.#toClient += options.storeLeftover.length;
      client.write(options.storeLeftover);
    }
    if (options.clientLeftover.length > 0) {
      this.#fromClient += options.clientLeftover.length;
      store.write(options.clientLeftover);
    }
    client.setTimeout(options.idleTimeoutMs, () => this.#farewell('idle-timeout', options.idleFarewell));
    const limit = setTimeout(
      () => this.#farewell('session-limit', options.sessionFarewell),
      options.maxSessionMs,
    );
    limit.unref();
    void this.done.then(() => clearTimeout(limit));
    client.pipe(store);
    store.pipe(client);
  }

  /** Ends the session with an untagged BYE (RFC 9051 §7.1.5), the store side first. */
  #farewell(end: PipeEnd, bye: string): void {
    this.#end ??= end;
    this.#store.unpipe(this.#client);
    this.#store.destroy();
    this.#client.end(bye);
    this.#client.destroySoon();
  }

  #fail(end: PipeEnd): void {
    this.#end ??= end;
    this.#client.destroy();
    this.#store.destroy();
  }
}

function closed(socket: net.Socket): Promise<void> {
  if (socket.closed) return Promise.resolve();
  return new Promise((resolve) => socket.once('close', () => resolve()));
}
