import { createReadStream, readFileSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { GatewayError } from '../errors/index.js';
import type { SpoolEnvelope } from './spool-entry.js';

/**
 * The on-disk format of a spool entry (version 2, one file per entry: `queue/<id>.entry`):
 *
 *     message   M octets   the message exactly as it will be delivered (our Received: on top)
 *     envelope  E octets   the SpoolEnvelope as JSON, UTF-8
 *     trailer   44 octets  `MSSGW-SPOOL/2 M=<M, 16 hex digits> E=<E, 8 hex digits>\n`
 *
 * The envelope comes after the message because it is known only once the message has been received
 * (its size, Message-ID and the headers scanned while it streamed): the message bytes are streamed
 * into the file once and never copied, and the envelope is appended before the one fsync. Readers
 * of the message (LMTP, relay, a DSN's returned original) read octets [0, M); readers of the
 * envelope read the trailer, then the E octets before it. The file is complete or absent in
 * `queue/` (written and fsynced in `tmp/`, then renamed), so the trailer is a consistency check,
 * not a commit marker: M + E + 44 must be the file's size.
 *
 * Version 1 (before): `queue/<id>.eml` (the message) and `queue/<id>.json` (the envelope, the commit
 * marker). The spool still reads, delivers and removes such entries (an upgrade with a backlog).
 */
export const ENTRY_SUFFIX = '.entry';
export const TRAILER_LENGTH = 44;
const TRAILER = /^MSSGW-SPOOL\/2 M=([0-9a-f]{16}) E=([0-9a-f]{8})\n$/;
/** Bytes read from the end of an entry at once: the trailer and, most often, the whole envelope. */
const TAIL_READ = 8192;

/** The envelope and trailer appended to a message of `messageLength` octets. */
export function entryTail(envelope: SpoolEnvelope, messageLength: number): Buffer {
  const json = Buffer.from(JSON.stringify(envelope), 'utf8');
  const trailer =
    `MSSGW-SPOOL/2 M=${messageLength.toString(16).padStart(16, '0')} ` +
    `E=${json.length.toString(16).padStart(8, '0')}\n`;
  return Buffer.concat([json, Buffer.from(trailer, 'latin1')]);
}

/** Where the parts of an entry are, from its trailer, or an error naming what is wrong. */
export function parseTrailer(
  trailer: Buffer,
  fileSize: number,
  id: string,
): { readonly messageLength: number; readonly envelopeLength: number } {
  const m = TRAILER.exec(trailer.toString('latin1'));
  const messageLength = m ? parseInt(m[1]!, 16) : NaN;
  const envelopeLength = m ? parseInt(m[2]!, 16) : NaN;
  if (!m || messageLength + envelopeLength + TRAILER_LENGTH !== fileSize)
    throw new GatewayError('SPOOL_FAILED', `spool entry ${id} is damaged (no valid trailer)`, { id });
  return { messageLength, envelopeLength };
}

/** A whole entry file in memory (tests, tools): its envelope and its message. */
export function parseSpoolEntry(file: Buffer, id = '?'): { envelope: SpoolEnvelope; message: Buffer } {
  if (file.length < TRAILER_LENGTH)
    throw new GatewayError('SPOOL_FAILED', `spool entry ${id} is damaged (too short)`, { id });
  const { messageLength, envelopeLength } = parseTrailer(
    file.subarray(file.length - TRAILER_LENGTH),
    file.length,
    id,
  );
  const json = file.subarray(messageLength, messageLength + envelopeLength).toString('utf8');
  return { envelope: JSON.parse(json) as SpoolEnvelope, message: file.subarray(0, messageLength) };
}

/** Reads an entry's envelope from its open file: one read from the end, two for a large envelope. */
export async function readEntryEnvelope(
  fh: FileHandle,
  id: string,
): Promise<{ envelope: SpoolEnvelope; messageLength: number }> {
  const { size } = await fh.stat();
  if (size < TRAILER_LENGTH)
    throw new GatewayError('SPOOL_FAILED', `spool entry ${id} is damaged (too short)`, { id });
  const tailLength = Math.min(size, TAIL_READ);
  const tail = Buffer.alloc(tailLength);
  await fh.read(tail, 0, tailLength, size - tailLength);
  const { messageLength, envelopeLength } = parseTrailer(
    tail.subarray(tailLength - TRAILER_LENGTH),
    size,
    id,
  );
  let json: Buffer;
  if (envelopeLength + TRAILER_LENGTH <= tailLength)
    json = tail.subarray(tailLength - TRAILER_LENGTH - envelopeLength, tailLength - TRAILER_LENGTH);
  else {
    json = Buffer.alloc(envelopeLength);
    await fh.read(json, 0, envelopeLength, messageLength);
  }
  return { envelope: JSON.parse(json.toString('utf8')) as SpoolEnvelope, messageLength };
}

/**
 * The message of an entry file, streamed: octets [0, messageLength), the envelope never read.
 * Without `messageLength` (an entry whose envelope this process did not read), the trailer gives it.
 */
export function entryMessageStream(file: string, id: string, messageLength?: number): Readable {
  if (messageLength === undefined) return Readable.from(locatedMessage(file, id));
  // `end` is inclusive: an empty message has no octet to read.
  return messageLength === 0
    ? Readable.from([])
    : createReadStream(file, { start: 0, end: messageLength - 1 });
}

async function* locatedMessage(file: string, id: string): AsyncGenerator<Buffer> {
  const fh = await open(file, 'r');
  let messageLength: number;
  try {
    const { size } = await fh.stat();
    const trailer = Buffer.alloc(TRAILER_LENGTH);
    await fh.read(trailer, 0, TRAILER_LENGTH, Math.max(0, size - TRAILER_LENGTH));
    messageLength = parseTrailer(trailer, size, id).messageLength;
  } finally {
    await fh.close();
  }
  for await (const chunk of entryMessageStream(file, id, messageLength)) yield chunk as Buffer;
}

/** The message of an entry file, read whole and at once (a DSN returning the original). */
export function readEntryMessageSync(file: string, id: string): Buffer {
  return parseSpoolEntry(readFileSync(file), id).message;
}
