/**
 * The trace header we add (RFC 5321 §4.4): who sent it, over which TLS, with which certificate DN.
 * Values from the client are sanitised: no control characters, no comment breakout.
 */
export interface ReceivedInfo {
  readonly helo: string;
  readonly remoteAddress: string;
  readonly hostname: string;
  readonly protocol: 'ESMTPS' | 'ESMTPSA' | 'ESMTP';
  readonly tlsProtocol?: string;
  readonly tlsCipher?: string;
  /** The peer certificate's subject as presented (RFC 4514 string, pki presentedDn). */
  readonly peerDn?: string;
  readonly id: string;
  readonly recipient?: string;
  readonly date: Date;
}

/**
 * The control characters (Unicode category Cc: U+0000–U+001F, U+007F–U+009F), spelled as ranges: a
 * `\p{Cc}` class needs the unicode flag, whose matcher cost several times more on every message.
 */
// eslint-disable-next-line no-control-regex -- control characters are what these remove
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
// eslint-disable-next-line no-control-regex -- as above
const UNSAFE_IN_VALUE = /[\u0000-\u001f\u007f-\u009f()\\]/g;

function clean(value: string, max = 200): string {
  return value.replace(UNSAFE_IN_VALUE, ' ').slice(0, max);
}

/**
 * Text kept whole inside an RFC 5322 §3.2.2 comment: `(`, `)` and `\` become quoted-pairs rather
 * than being dropped, so a DN such as `ST=Rhone (69)` reads as presented; control characters
 * (a header break) become spaces.
 */
function commentText(value: string, max = 400): string {
  return value
    .replace(CONTROL, ' ')
    .slice(0, max)
    .replace(/[()\\]/g, (c) => `\\${c}`);
}

/** RFC 5322 §3.3 date-time in UTC. */
export function rfc5322Date(d: Date): string {
  return d.toUTCString().replace(/GMT$/, '+0000');
}

export function receivedHeader(info: ReceivedInfo): string {
  const from = `from ${clean(info.helo, 100) || 'unknown'} ([${clean(info.remoteAddress, 60)}])`;
  const tls = info.tlsProtocol
    ? `\r\n\t(using ${clean(info.tlsProtocol, 20)} with cipher ${clean(info.tlsCipher ?? '?', 60)})`
    : '';
  const dn = info.peerDn ? `\r\n\t(peer certificate ${commentText(info.peerDn)})` : '';
  const by = `\r\n\tby ${clean(info.hostname, 100)} (mssgw) with ${info.protocol} id ${info.id}`;
  const rcpt = info.recipient ? `\r\n\tfor <${clean(info.recipient, 254)}>` : '';
  return `Received: ${from}${tls}${dn}${by}${rcpt};\r\n\t${rfc5322Date(info.date)}\r\n`;
}
