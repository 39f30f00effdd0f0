import { constants } from 'node:crypto';
import type { SecureContextOptions } from 'node:tls';

/**
 * The MSSanté TLS profile (MSSANTE.md "TLS profile"): TLS 1.2 minimum; TLS 1.2 with ECDHE-RSA
 * AES-GCM only (AES-CBC-SHA256/384 only when a peer needs them); TLS 1.3 AEAD suites. Set explicitly,
 * because Node's defaults offer more.
 */
export const TLS13_SUITES = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_AES_128_GCM_SHA256',
  'TLS_CHACHA20_POLY1305_SHA256',
];
export const TLS12_GCM_SUITES = ['ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES128-GCM-SHA256'];
export const TLS12_CBC_SUITES = ['ECDHE-RSA-AES256-SHA384', 'ECDHE-RSA-AES128-SHA256'];

export interface TlsProfileOptions {
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly allowCbc: boolean;
}

export function cipherList(options: TlsProfileOptions): string {
  return [...TLS13_SUITES, ...TLS12_GCM_SUITES, ...(options.allowCbc ? TLS12_CBC_SUITES : [])].join(':');
}

/** Options shared by every TLS endpoint we run or open (server and client side). */
export function tlsProfile(options: TlsProfileOptions): SecureContextOptions {
  return {
    minVersion: options.minVersion,
    maxVersion: 'TLSv1.3',
    ciphers: cipherList(options),
    honorCipherOrder: true,
    // TLS 1.2 renegotiation is refused both ways (a client-initiated one costs us a full handshake
    // each time, CVE-2011-1473; TLS 1.3 has none): the peer gets a no_renegotiation alert.
    secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
  };
}
