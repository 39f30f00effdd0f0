import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isGatewayError } from '../errors/index.js';
import { refusal, sourceFailure } from './mirror-outcome.js';

/**
 * Where a mirror's new copy comes from: an `https://` URL (the national side, verified against the
 * IGC-Santé authorities we trust, our certificate presented) or a file. A download lands in a
 * temporary file first, so that a half-received copy is never parsed as if it were whole.
 */
export interface FetchedCopy {
  readonly file: string;
  readonly sizeBytes: number;
  /** Hex SHA-256 of the bytes: an unchanged copy is recognised without parsing it again. */
  readonly sha256: string;
  /** True when `file` is ours to delete (a download). */
  readonly temporary: boolean;
}

export interface FetchOptions {
  /** Folder for downloads in progress. */
  readonly tmpDir: string;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  /** TLS material for https:// sources: trusted authorities and, optionally, our client certificate. */
  readonly tls: { readonly ca: readonly string[]; readonly cert?: string; readonly key?: string };
}

export function isUrlSource(source: string): boolean {
  return /^https:\/\//i.test(source);
}

/** Counts and hashes the bytes going through; fails past `maxBytes`. */
class Measure extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  constructor(private readonly maxBytes: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      done(refusal('too_large', `the copy is larger than directory.fetch.maxBytes (${this.maxBytes})`));
      return;
    }
    this.hash.update(chunk);
    done(null, chunk);
  }
}

export async function fetchCopy(source: string, options: FetchOptions): Promise<FetchedCopy> {
  return isUrlSource(source) ? download(source, options) : measureFile(source, options.maxBytes);
}

/** Deletes a downloaded copy (a file source is left alone). */
export async function discardCopy(copy: FetchedCopy | undefined): Promise<void> {
  if (copy?.temporary) await rm(copy.file, { force: true });
}

async function measureFile(file: string, maxBytes: number): Promise<FetchedCopy> {
  const resolved = path.resolve(file);
  try {
    const st = await stat(resolved);
    if (!st.isFile()) throw sourceFailure('source_missing', `${resolved} is not a file`);
    if (st.size > maxBytes)
      throw refusal('too_large', `${resolved} is larger than directory.fetch.maxBytes (${maxBytes})`);
    const measure = new Measure(maxBytes);
    await pipeline(createReadStream(resolved), measure, async (chunks: AsyncIterable<Buffer>) => {
      for await (const _ of chunks); // only measured and hashed here
    });
    return { file: resolved, sizeBytes: measure.bytes, sha256: measure.hash.digest('hex'), temporary: false };
  } catch (err) {
    if (isGatewayError(err)) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw sourceFailure(
      code === 'ENOENT' ? 'source_missing' : 'unreachable',
      `cannot read ${resolved}: ${code ?? (err as Error).message}`,
      err,
    );
  }
}

function request(url: string, options: FetchOptions, signal: AbortSignal): Promise<IncomingMessage> {
  const { ca, cert, key } = options.tls;
  return new Promise((resolve, reject) => {
    const req = httpsGet(url, {
      ca: [...ca],
      ...(cert !== undefined && key !== undefined ? { cert, key } : {}),
      minVersion: 'TLSv1.2',
      signal,
      headers: { 'user-agent': 'mssgw-directory-mirror' },
    });
    req.once('response', resolve);
    req.once('error', reject);
  });
}

async function download(url: string, options: FetchOptions): Promise<FetchedCopy> {
  await mkdir(options.tmpDir, { recursive: true, mode: 0o750 });
  const file = path.join(options.tmpDir, `download-${randomBytes(6).toString('hex')}.part`);
  const signal = AbortSignal.timeout(options.timeoutMs);
  const where = new URL(url).host;
  try {
    const res = await request(url, options, signal);
    if (res.statusCode !== 200) {
      res.resume();
      throw sourceFailure('http_status', `${where} answered HTTP ${res.statusCode ?? '?'}`);
    }
    const announced = Number(res.headers['content-length'] ?? NaN);
    if (announced > options.maxBytes) {
      res.destroy();
      throw refusal('too_large', `${where} announces ${announced} bytes, over directory.fetch.maxBytes`);
    }
    const measure = new Measure(options.maxBytes);
    await pipeline(res, measure, createWriteStream(file, { mode: 0o640 }), { signal });
    // A connection closed early by the server ends the response without error: compare with the length.
    if (Number.isFinite(announced) && measure.bytes !== announced)
      throw sourceFailure('unreachable', `${where} sent ${measure.bytes} of ${announced} bytes`);
    return { file, sizeBytes: measure.bytes, sha256: measure.hash.digest('hex'), temporary: true };
  } catch (err) {
    await rm(file, { force: true });
    if (isGatewayError(err)) throw err;
    if (signal.aborted)
      throw sourceFailure('timeout', `${where} did not send the copy within ${options.timeoutMs} ms`, err);
    const e = err as NodeJS.ErrnoException;
    throw sourceFailure('unreachable', `${where}: ${e.code ?? ''} ${e.message}`.trim(), err);
  }
}
