import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { GatewayError, type ErrorCode } from '../errors/index.js';
import type { Logger } from 'pino';

/**
 * Runs one long-lived child program (the embedded Redis or Dovecot, ARCHITECTURE.md §7), waits until
 * it answers, restarts it with exponential backoff when it dies unexpectedly, and stops it on
 * request. The child writes to a file rather than a pipe: if the gateway is killed the child keeps
 * a valid stdout/stderr (a broken pipe would kill it mid-write) and the next start can read why it
 * failed.
 */
export interface SupervisedProcessOptions {
  /** Short name used in log events (`<name>.started`, `<name>.exited`, ...). */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  /** File the child's stdout and stderr are appended to. */
  readonly outputFile: string;
  readonly logger: Logger;
  /** Resolves once the service answers; `signal` is aborted if the child exits first. */
  readonly ready: (signal: AbortSignal) => Promise<void>;
  /** Runs before every spawn (first start and restarts), e.g. to clear stale processes. */
  readonly beforeStart?: () => Promise<void>;
  /** Runs at the end of stop(), e.g. to wait for the grandchildren of the service. */
  readonly afterStop?: () => Promise<void>;
  /** Told to the operator when the program is not installed. */
  readonly missingHint?: string;
  /** Code of the GatewayError start() rejects with when the child fails to come up. */
  readonly failureCode: ErrorCode;
  /** How long the child has to answer. Default 30 s. */
  readonly startTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL. Default 30 s. */
  readonly stopTimeoutMs?: number;
  /** First and longest delay between restarts. Default 500 ms and 30 s. */
  readonly restartDelayMs?: { readonly initial: number; readonly max: number };
  /** A child that ran this long resets the backoff. Default 60 s. */
  readonly stableAfterMs?: number;
}

interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly error?: Error;
}

const OUTPUT_TAIL_BYTES = 4096;

async function readFrom(file: string, offset: number): Promise<string> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return '';
  try {
    const { size } = await handle.stat();
    const start = Math.max(offset, size - OUTPUT_TAIL_BYTES);
    const buf = Buffer.alloc(Math.max(0, size - start));
    await handle.read(buf, 0, buf.length, start);
    return buf.toString('utf8');
  } finally {
    await handle.close();
  }
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** Every supervisor with a child that may still run, for the process-wide stop. */
const supervisors = new Set<SupervisedProcess>();
/** Set once the gateway is stopping: no child is (re)started after that, whatever happens. */
let halted = false;

export class SupervisedProcess {
  readonly #o: SupervisedProcessOptions;
  readonly #live = new Map<ChildProcess, Promise<ExitInfo>>();
  #current: ChildProcess | undefined;
  #startedAt = 0;
  #delay: number;
  #timer: NodeJS.Timeout | undefined;
  #restarting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;

  private constructor(options: SupervisedProcessOptions) {
    this.#o = options;
    this.#delay = options.restartDelayMs?.initial ?? 500;
  }

  /** Spawns the child and resolves once it answers; rejects (and leaves nothing running) otherwise. */
  static async start(options: SupervisedProcessOptions): Promise<SupervisedProcess> {
    const supervised = new SupervisedProcess(options);
    supervisors.add(supervised);
    try {
      await supervised.#launch();
    } catch (err) {
      supervisors.delete(supervised);
      throw err;
    }
    return supervised;
  }

  /**
   * The gateway is stopping (SIGTERM/SIGINT): from now on no supervisor restarts its child, even
   * one that dies before its orderly stop; pending restarts are cancelled. Children keep running
   * until their supervisor's stop(), in the gateway's order.
   */
  static haltRestarts(): void {
    halted = true;
    for (const s of supervisors) clearTimeout(s.#timer);
  }

  /** Last resort when the stop runs out of time: `signal` to every child and its process group. */
  static signalAll(signal: NodeJS.Signals): void {
    for (const s of supervisors) for (const child of s.#live.keys()) killGroup(child, signal);
  }

  /** Pid of the current child (it changes after a restart). */
  get pid(): number {
    return this.#current?.pid ?? 0;
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #launch(): Promise<void> {
    await this.#o.beforeStart?.();
    if (this.#stopping) throw new GatewayError(this.#o.failureCode, `${this.#o.name} is stopping`);
    const offset = fileSize(this.#o.outputFile);
    const fd = openSync(this.#o.outputFile, 'a', 0o600);
    let child: ChildProcess;
    try {
      // Its own process group: a SIGTERM to the gateway's group (a shell's Ctrl-C, systemd without
      // KillMode=mixed, a container runtime) reaches the gateway only, which stops children in order.
      child = spawn(this.#o.command, this.#o.args, { stdio: ['ignore', fd, fd], detached: true });
    } finally {
      closeSync(fd);
    }
    const exited = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', (error) => resolve({ code: null, signal: null, error }));
    });
    this.#live.set(child, exited);
    void exited.then(() => this.#live.delete(child));
    try {
      await this.#waitReady(exited, offset);
    } catch (err) {
      await this.#kill(child, exited, 5_000);
      throw err;
    }
    this.#current = child;
    this.#startedAt = Date.now();
    this.#o.logger.info({ event: `${this.#o.name}.started`, childPid: child.pid }, `${this.#o.name} started`);
    void exited.then((info) => this.#onExit(child, info));
  }

  async #waitReady(exited: Promise<ExitInfo>, offset: number): Promise<void> {
    const abort = new AbortController();
    const timeoutMs = this.#o.startTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const died = exited.then(async (info) => {
      abort.abort();
      throw await this.#startFailure(info, offset);
    });
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abort.abort();
        reject(
          new GatewayError(this.#o.failureCode, `${this.#o.name} did not answer within ${timeoutMs} ms`),
        );
      }, timeoutMs);
    });
    died.catch(() => {}); // settled after a successful start too, when the child exits later
    // A probe that gives up because the child died rejects at once, while the exit's report still
    // reads the child's output: let the report win (it says why, e.g. "Address already in use"; a
    // loaded run saw the bare "exited before it answered" instead).
    const ready = this.#o.ready(abort.signal).catch((err: unknown) => {
      if (!abort.signal.aborted) throw err;
    });
    try {
      await Promise.race([ready, died, timedOut]);
      // A probe that gave up because the child died must not count as ready: report the exit.
      if (abort.signal.aborted) await Promise.race([died, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #startFailure(info: ExitInfo, offset: number): Promise<GatewayError> {
    const { name, command } = this.#o;
    if ((info.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
      const hint = this.#o.missingHint ? `: ${this.#o.missingHint}` : '';
      return new GatewayError('DEPENDENCY_MISSING', `${name}: program "${command}" not found${hint}`, {
        command,
      });
    }
    const output = (await readFrom(this.#o.outputFile, offset)).trim();
    return new GatewayError(
      this.#o.failureCode,
      `${name} exited during start-up (code ${info.code ?? '-'}, signal ${info.signal ?? '-'})` +
        (output ? `: ${output.split('\n').slice(-3).join(' | ')}` : ''),
      { exitCode: info.code, signal: info.signal, output, outputFile: this.#o.outputFile },
      info.error ? { cause: info.error } : undefined,
    );
  }

  #onExit(child: ChildProcess, info: ExitInfo): void {
    if (this.#stopping || child !== this.#current) return;
    if (halted) {
      this.#o.logger.warn(
        { event: `${this.#o.name}.exited`, childPid: child.pid, code: info.code, signal: info.signal },
        `${this.#o.name} exited while the gateway stops: not restarted`,
      );
      return;
    }
    const ranMs = Date.now() - this.#startedAt;
    const { initial, max } = this.#o.restartDelayMs ?? { initial: 500, max: 30_000 };
    if (ranMs >= (this.#o.stableAfterMs ?? 60_000)) this.#delay = initial;
    this.#o.logger.error(
      { event: `${this.#o.name}.exited`, childPid: child.pid, code: info.code, signal: info.signal, ranMs },
      `${this.#o.name} exited unexpectedly`,
    );
    this.#scheduleRestart();
    this.#delay = Math.min(this.#delay * 2, max);
  }

  #scheduleRestart(): void {
    const delayMs = this.#delay;
    this.#o.logger.warn(
      { event: `${this.#o.name}.restart.scheduled`, delayMs },
      `${this.#o.name} restarting`,
    );
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!halted) this.#restarting = this.#restart();
    }, delayMs);
  }

  async #restart(): Promise<void> {
    if (halted) return;
    try {
      await this.#launch();
    } catch (err) {
      if (this.#stopping) return;
      const message = err instanceof Error ? err.message : String(err);
      this.#o.logger.error({ event: `${this.#o.name}.restart.failed`, err: message }, 'restart failed');
      this.#scheduleRestart();
      this.#delay = Math.min(this.#delay * 2, this.#o.restartDelayMs?.max ?? 30_000);
    }
  }

  async #kill(child: ChildProcess, exited: Promise<ExitInfo>, graceMs: number): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
    const outcome = await Promise.race([exited, late]);
    clearTimeout(timer);
    if (outcome === 'late') {
      this.#o.logger.warn(
        { event: `${this.#o.name}.kill`, childPid: child.pid },
        'no exit after SIGTERM, SIGKILL',
      );
      killGroup(child, 'SIGKILL');
      await exited;
    }
  }

  async #stop(): Promise<void> {
    clearTimeout(this.#timer);
    const graceMs = this.#o.stopTimeoutMs ?? 30_000;
    await Promise.all([...this.#live].map(([child, exited]) => this.#kill(child, exited, graceMs)));
    await this.#restarting;
    await this.#o.afterStop?.();
    supervisors.delete(this);
    this.#o.logger.info({ event: `${this.#o.name}.stopped` }, `${this.#o.name} stopped`);
  }
}

/** A signal to the child's whole group (Dovecot's service processes), else to the child alone. */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}
