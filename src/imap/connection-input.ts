import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { CommandFramer, type CommandLimits, type FrameEvent, type LineEvent } from './command-framer.js';

/**
 * Joins a socket to a command framer: the session awaits the next command (or SASL response line)
 * and executes it before asking for another, so pipelined commands run in order. The socket is
 * paused while more than one maximal command is waiting (backpressure), and resumed when the
 * session needs bytes. `detach` hands what was received and not read to the next owner of the socket.
 */
export class ConnectionInput {
  readonly #socket: Duplex;
  readonly #framer: CommandFramer;
  readonly #highWater: number;
  #ended = false;
  #wake: (() => void) | undefined;
  readonly #onData = (chunk: Buffer) => {
    this.#framer.push(chunk);
    if (this.#framer.buffered > this.#highWater) this.#socket.pause();
    this.#notify();
  };
  readonly #onEnd = () => {
    this.#ended = true;
    this.#notify();
  };

  constructor(socket: Duplex, limits: CommandLimits) {
    this.#socket = socket;
    this.#framer = new CommandFramer(limits);
    this.#highWater = limits.maxLineBytes + limits.maxLiteralBytes;
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onEnd);
  }

  /** Whether the client has started a command and not finished it. */
  get midCommand(): boolean {
    return this.#framer.midCommand;
  }

  /** The next command event; undefined once the client has closed and nothing complete is left. */
  nextCommand(): Promise<FrameEvent | undefined> {
    return this.#next(() => this.#framer.nextCommand());
  }

  /** The next bare line (a SASL response); undefined once the client has closed. */
  nextLine(): Promise<LineEvent | undefined> {
    return this.#next(() => this.#framer.nextLine());
  }

  /** Stops reading the socket (left paused) and returns the bytes received and not read. */
  detach(): Buffer {
    this.#socket.off('data', this.#onData);
    this.#socket.off('end', this.#onEnd);
    this.#socket.off('close', this.#onEnd);
    this.#socket.pause();
    this.#ended = true;
    this.#notify();
    return this.#framer.takeBuffered();
  }

  async #next<T>(pull: () => T | undefined): Promise<T | undefined> {
    for (;;) {
      const event = pull();
      if (event !== undefined) return event;
      if (this.#ended) return undefined;
      this.#socket.resume();
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/** Resolves when the socket's write buffer has drained (or the socket closed). */
export function drained(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}
