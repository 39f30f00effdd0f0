import { randomUUID } from 'node:crypto';
import { encodeWords, foldLines } from 'nodemailer/lib/mime-funcs/index.js';
import { encode as qpEncode, wrap as qpWrap } from 'nodemailer/lib/qp/index.js';
import { mailDate } from '../delivery/index.js';
import { frenchDate } from './lifecycle-time.js';

/**
 * The inactivity warning (issue #6): an RFC 5322 message put into the mailbox itself, and sent to
 * its owner's other addresses and its managers' (issue #13, warning-recipients.ts), before the
 * address is unpublished from the national directory. French, UTF-8, quoted-printable (RFC 2045
 * §6.7) so that it survives any store; the subject is an RFC 2047 encoded word. Pure: the caller gives the clock's `date` and delivers the bytes (WarningDelivery).
 */
export interface WarningMessageInput {
  /** The mailbox warned, named in the text. */
  readonly address: string;
  /** Where the message goes (`To:`): the owner's or a manager's other address. Default: `address`. */
  readonly to?: string;
  /** When the address will be unpublished, as announced (the decision's `unpublishAt`). */
  readonly unpublishAt: Date;
  /** Latest use of the mailbox; undefined when it was never used. */
  readonly lastActivityAt?: Date;
  /** Days of inactivity that lead to unpublication (configuration `lifecycle.inactivityDays`). */
  readonly inactivityDays: number;
  /** Time zone of the dates written in the message (configuration `lifecycle.timeZone`). */
  readonly timeZone: string;
  /** Now, from the injected clock. */
  readonly date: Date;
  /** Message-ID of the warning, `<…>`. Default: a random UUID at the mailbox's domain. */
  readonly messageId?: string;
}

export interface WarningMessage {
  /** Null reverse-path (RFC 5321 §4.5.5): nobody should answer or bounce back a notice. */
  readonly envelope: { readonly from: ''; readonly to: string };
  readonly subject: string;
  /** The whole message: CRLF line endings, ASCII only, lines within 78 octets. */
  readonly raw: Buffer;
}

/** The subject, e.g. « Votre adresse MSSanté sera dépubliée le 16/02/2026 ». */
export function warningSubject(unpublishAt: Date, timeZone: string): string {
  return `Votre adresse MSSanté sera dépubliée le ${frenchDate(unpublishAt.getTime(), timeZone)}`;
}

/** The text of the warning: the date, why, and how to keep the address published. */
export function warningText(input: WarningMessageInput): string {
  const day = frenchDate(input.unpublishAt.getTime(), input.timeZone);
  const last =
    input.lastActivityAt === undefined
      ? 'Cette boîte aux lettres n’a encore jamais été utilisée depuis sa création.'
      : `Sa dernière utilisation date du ${frenchDate(input.lastActivityAt.getTime(), input.timeZone)}.`;
  return [
    'Bonjour,',
    '',
    `L’adresse de messagerie sécurisée de santé ${input.address} n’a pas été utilisée depuis`,
    'plusieurs semaines. ' + last,
    '',
    `Les adresses MSSanté inutilisées pendant ${input.inactivityDays} jours sont retirées de l’annuaire`,
    'national (Annuaire Santé), afin que vos correspondants n’écrivent pas à une adresse que personne',
    `ne lit. Sans utilisation d’ici là, cette adresse sera dépubliée de l’annuaire à partir du ${day}.`,
    '',
    'Pour la garder publiée, il suffit d’utiliser cette boîte aux lettres : une connexion depuis votre',
    'logiciel de messagerie ou votre logiciel métier (IMAP), ou l’envoi d’un message depuis cette',
    'adresse. Recevoir des messages ne compte pas comme une utilisation.',
    '',
    'Une fois dépubliée, l’adresse continue de recevoir les messages qui lui sont adressés, et elle est',
    'republiée automatiquement dès sa prochaine utilisation.',
    '',
    'Ce message est envoyé automatiquement par votre opérateur de messagerie MSSanté ; merci de ne pas',
    'y répondre. Pour toute question, adressez-vous au support de votre opérateur.',
    '',
  ].join('\r\n');
}

/** Builds the warning for one mailbox. */
export function buildWarningMessage(input: WarningMessageInput): WarningMessage {
  const domain = input.address.slice(input.address.lastIndexOf('@') + 1);
  const subject = warningSubject(input.unpublishAt, input.timeZone);
  const body = qpWrap(qpEncode(warningText(input)), 76).replace(/\r?\n/g, '\r\n');
  const head = [
    `From: =?UTF-8?Q?Postmaster_MSSant=C3=A9?= <postmaster@${domain}>`,
    `To: <${input.to ?? input.address}>`,
    foldLines(`Subject: ${encodeWords(subject, 'Q', 52)}`, 76).replace(/\r?\n/g, '\r\n'),
    `Date: ${mailDate(input.date)}`,
    `Message-ID: ${input.messageId ?? `<lifecycle-${randomUUID()}@${domain}>`}`,
    // RFC 3834 §5: a notice nobody answers, and that auto-responders leave alone.
    'Auto-Submitted: auto-generated',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    'Content-Language: fr',
  ];
  const raw = Buffer.from(
    `${head.join('\r\n')}\r\n\r\n${body}${body.endsWith('\r\n') ? '' : '\r\n'}`,
    'ascii',
  );
  return { envelope: { from: '', to: input.to ?? input.address }, subject, raw };
}
