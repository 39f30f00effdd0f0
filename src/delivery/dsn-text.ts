import type { DsnAction } from './dsn-wanted.js';

/** What the human-readable part says about one recipient. */
export interface DsnTextRecipient {
  readonly address: string;
  readonly status: string;
  readonly diagnostic?: string;
  readonly remoteMta?: string;
}

export interface DsnTextInput {
  readonly action: DsnAction;
  readonly recipients: readonly DsnTextRecipient[];
  /** Already formatted (RFC 5322 date), for delayed notices. */
  readonly willRetryUntil?: string;
}

/** The Subject, French first as everywhere in MSSanté, then English. */
export const DSN_SUBJECTS: Readonly<Record<DsnAction, string>> = {
  failed: 'Échec de remise / Delivery failure',
  delayed: 'Remise retardée / Delivery delayed',
  delivered: 'Remis / Delivered',
};

function recipientLines(recipients: readonly DsnTextRecipient[], via: string): string[] {
  return recipients.map((r) => {
    const why = r.diagnostic ? ` : ${r.diagnostic}` : '';
    const where = r.remoteMta ? ` (${via} ${r.remoteMta})` : '';
    return `  - ${r.address} [${r.status}]${why}${where}`;
  });
}

function french(input: DsnTextInput): string[] {
  const list = recipientLines(input.recipients, 'serveur');
  switch (input.action) {
    case 'failed':
      return [
        "Votre message n'a pas pu être remis aux destinataires suivants :",
        ...list,
        '',
        "Vérifiez l'adresse de chaque destinataire (par exemple dans l'Annuaire Santé), puis renvoyez " +
          'le message. Si le problème persiste, contactez votre administrateur de messagerie en lui ' +
          'transmettant ce rapport.',
      ];
    case 'delayed':
      return [
        "La remise de votre message aux destinataires suivants est retardée ; d'autres tentatives " +
          `auront lieu${input.willRetryUntil ? ` jusqu'au ${input.willRetryUntil}` : ''} :`,
        ...list,
        '',
        "Aucune action n'est nécessaire pour l'instant : vous serez prévenu si la remise échoue " +
          'définitivement. Ne renvoyez pas le message, le destinataire le recevrait en double.',
      ];
    case 'delivered':
      return [
        'Votre message a bien été remis aux destinataires suivants :',
        ...list,
        '',
        "Aucune action n'est nécessaire.",
      ];
  }
}

function english(input: DsnTextInput): string[] {
  const list = recipientLines(input.recipients, 'server');
  switch (input.action) {
    case 'failed':
      return [
        'Your message could not be delivered to the following recipients:',
        ...list,
        '',
        "Check each recipient's address (for instance in the Annuaire Santé directory), then send the " +
          'message again. If the problem persists, contact your mail administrator with this report.',
      ];
    case 'delayed':
      return [
        'Delivery of your message to the following recipients is delayed; we will keep trying ' +
          `${input.willRetryUntil ? `until ${input.willRetryUntil}` : 'for a while'}:`,
        ...list,
        '',
        'No action is needed yet: you will be told if delivery finally fails. Do not send the message ' +
          'again, or the recipient would receive it twice.',
      ];
    case 'delivered':
      return ['Your message was delivered to the following recipients:', ...list, '', 'No action is needed.'];
  }
}

/** The first part of the report (RFC 6522 §3): French, then English, CRLF line endings. */
export function dsnHumanText(input: DsnTextInput): string {
  return [
    ...french(input),
    '',
    '----------------------------------------------------------------------',
    '',
    ...english(input),
    '',
    '-- ',
    'Mail Delivery System',
    '',
  ].join('\r\n');
}
