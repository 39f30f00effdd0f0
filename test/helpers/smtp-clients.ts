import nodemailer, { type Transporter } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import { identity, pkiFile } from './gateway.js';

/**
 * A mail client on our submission port: STARTTLS against the development root, then XOAUTH2 with a
 * bearer token. `extra` adds nodemailer options (a pool, a local address...).
 */
export function tokenSubmission(
  port: number,
  user: string,
  accessToken: string,
  extra: SMTPTransport.Options = {},
): Transporter<SMTPTransport.SentMessageInfo> {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    requireTLS: true,
    auth: { type: 'OAuth2', user, accessToken },
    tls: { ca: pkiFile('ca/root.crt'), servername: 'localhost' },
    ...extra,
  });
}

/** Another operator's MTA on our MX: STARTTLS presenting a development-PKI leaf (`peer-trusted` unless told). */
export function peerMx(
  port: number,
  extra: SMTPTransport.Options = {},
  leaf = 'peer-trusted',
): Transporter<SMTPTransport.SentMessageInfo> {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    requireTLS: true,
    name: 'mx.peer.mssante.test',
    tls: { ...identity(leaf), ca: pkiFile('ca/root.crt'), servername: 'localhost' },
    ...extra,
  });
}
