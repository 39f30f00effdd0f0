import { DotStuffer, type WireReply } from './smtp-wire.js';

/**
 * The command flow of one SMTP/LMTP mail transaction from the client's side, shared by the relay
 * and local delivery: optional RSET, MAIL, one RCPT per recipient, DATA (RFC 5321 §3.3), grouped in
 * one write when the server offers PIPELINING (RFC 2920), and the dot-stuffed message ending with
 * the final ".". What the replies mean for each recipient stays with the caller (SMTP answers once
 * after the final dot, LMTP once per accepted recipient, RFC 2033 §4.2).
 */

/** A connection as the transaction flow uses it: writes with back-pressure, replies in order. */
export interface WireSession {
  /** Resolves once the bytes are handed to the kernel (or buffered below the high-water mark). */
  write(data: Buffer): Promise<void>;
  next(): Promise<WireReply>;
}

export interface EnvelopeCommands {
  /** Send RSET first: the connection carried a transaction before (Postfix does the same). */
  readonly reset: boolean;
  /** The whole MAIL FROM command line, without CRLF. */
  readonly mail: string;
  /** The RCPT TO command lines, one per recipient, without CRLF. */
  readonly rcpts: readonly string[];
  readonly pipelining: boolean;
  /** The caller's error for a server out of step (RSET refused): the connection is unusable. */
  readonly outOfStep: (detail: string) => Error;
}

export interface EnvelopeOutcome {
  readonly mail: WireReply;
  /** The reply to each RCPT, in order; absent for RCPTs never sent (MAIL refused, no pipelining). */
  readonly rcpts: readonly (WireReply | undefined)[];
  /** Indexes (into `rcpts`) of the recipients accepted, when MAIL was accepted too. */
  readonly accepted: readonly number[];
  /** The DATA reply; absent when DATA was not sent (nothing accepted, no pipelining). */
  readonly data?: WireReply;
  /** 354 with at least one recipient accepted: the caller sends the message now (sendMessage). */
  readonly sendMessage: boolean;
  /**
   * The server accepted DATA although MAIL or every RCPT was refused (RFC 2920 §3.1 says it must
   * not): it now waits for a message nobody will send. The replies stand; the connection must be
   * closed, never used again.
   */
  readonly outOfStep: boolean;
}

const ok = (reply: WireReply | undefined): boolean =>
  reply !== undefined && reply.code >= 200 && reply.code < 300;

/**
 * Sends the envelope and DATA, and reads their replies. With PIPELINING, everything goes in one
 * write and the replies are read in order (RFC 2920 §3.1: every status is checked, the DATA one
 * included, even when no recipient was accepted); without, each command waits for its reply and
 * the flow stops where a refusal makes the rest useless. Transport failures reject with the
 * session's own error; nothing of the message has been sent then.
 */
export async function sendEnvelope(session: WireSession, c: EnvelopeCommands): Promise<EnvelopeOutcome> {
  const checkReset = (reply: WireReply): void => {
    if (reply.code !== 250) throw c.outOfStep(`RSET answered ${reply.raw}`);
  };
  const ask = async (line: string): Promise<WireReply> => {
    await session.write(Buffer.from(`${line}\r\n`, 'utf8'));
    return session.next();
  };
  const rcpts: (WireReply | undefined)[] = c.rcpts.map(() => undefined);
  let mail: WireReply;
  let data: WireReply | undefined;
  if (c.pipelining) {
    const lines = [...(c.reset ? ['RSET'] : []), c.mail, ...c.rcpts, 'DATA'];
    await session.write(Buffer.from(`${lines.join('\r\n')}\r\n`, 'utf8'));
    if (c.reset) checkReset(await session.next());
    mail = await session.next();
    for (let i = 0; i < rcpts.length; i += 1) rcpts[i] = await session.next();
    data = await session.next();
  } else {
    if (c.reset) checkReset(await ask('RSET'));
    mail = await ask(c.mail);
    if (ok(mail)) for (let i = 0; i < rcpts.length; i += 1) rcpts[i] = await ask(c.rcpts[i]!);
  }
  const accepted = ok(mail) ? rcpts.flatMap((r, i) => (ok(r) ? [i] : [])) : [];
  if (accepted.length > 0) data ??= await ask('DATA');
  const dataAccepted = data?.code === 354;
  return {
    mail,
    rcpts,
    accepted,
    ...(data ? { data } : {}),
    sendMessage: dataAccepted && accepted.length > 0,
    outOfStep: dataAccepted && accepted.length === 0,
  };
}

/** How far a transaction went: once the final "." is on its way, the server may have the message. */
export interface MessageProgress {
  finalDot: boolean;
}

const CHUNK = 64 * 1024;

/**
 * Sends the message after a 354, dot-stuffed with bare CR and LF sent as CRLF (shared DotStuffer),
 * then the final ".". `progress.finalDot` turns true just before the "." is written: before it, a
 * broken connection cannot have delivered anything (the server discards an unfinished DATA).
 */
export async function sendMessage(
  session: WireSession,
  message: Buffer | AsyncIterable<Buffer | string>,
  progress: MessageProgress,
): Promise<void> {
  const stuffer = new DotStuffer();
  // The last piece of the message goes out with the final "." in one write (one TLS record and
  // one packet fewer for a small message).
  let held: Buffer | undefined;
  const take = async (chunk: Buffer): Promise<void> => {
    if (held?.length) await session.write(held);
    held = stuffer.encode(chunk);
  };
  if (Buffer.isBuffer(message)) {
    for (let at = 0; at < message.length; at += CHUNK) await take(message.subarray(at, at + CHUNK));
  } else {
    for await (const chunk of message)
      await take(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
  }
  progress.finalDot = true;
  const end = stuffer.end();
  await session.write(held?.length ? Buffer.concat([held, end]) : end);
}
