import type { AddressInfo } from 'node:net';

/** Where each enabled listener listens (an ephemeral port is known only once it listens). */
export interface GatewayAddresses {
  readonly mx?: AddressInfo | undefined;
  readonly submission?: AddressInfo | undefined;
  readonly submissionTls?: AddressInfo | undefined;
  readonly imap?: AddressInfo | undefined;
  readonly imapTls?: AddressInfo | undefined;
  readonly metrics?: AddressInfo | undefined;
  readonly admin?: AddressInfo | undefined;
  readonly portal?: AddressInfo | undefined;
}

/** `{ mx: '127.0.0.1:2525', ... }` for logs and the journal. */
export function describeAddresses(addresses: GatewayAddresses): Record<string, string> {
  const entries = Object.entries(addresses) as Array<[string, AddressInfo | undefined]>;
  return Object.fromEntries(entries.flatMap(([k, a]) => (a ? [[k, `${a.address}:${a.port}`]] : [])));
}
