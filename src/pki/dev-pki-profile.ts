import type { DistinguishedName, ExtendedKeyUsage } from './cert-builder.js';
import { formatDn } from './cert-builder.js';

/**
 * What the development PKI contains (ARCHITECTURE.md §8): a hierarchy shaped like IGC-Santé's and one
 * leaf per trust situation the gateway must handle. Every authority's CN starts with `TEST`, the
 * prefix the national test authorities carry, so a production configuration refuses them.
 */

/** Our own mail domain in development (the default of `domains` in the configuration). */
export const DEV_DOMAIN = 'op.mssante.test';
/** The whitelisted peer operator's domain. */
export const PEER_DOMAIN = 'peer.mssante.test';
/** CN prefix of every test authority, national or ours (MSSANTE.md "Certificates"). */
export const TEST_AUTHORITY_CN_PREFIX = 'TEST ';
/** The person's national id: 8 + RPPS number (MSSANTE.md "Mailboxes"). */
export const DEV_PERSON_NATIONAL_ID = '810000000001';

export const DEV_PKI_AUTHORITIES = ['root', 'org', 'pp', 'foreign-root'] as const;
export type DevPkiAuthorityName = (typeof DEV_PKI_AUTHORITIES)[number];

export const DEV_PKI_LEAVES = [
  'gateway',
  'peer-trusted',
  'peer-unlisted',
  'peer-revoked',
  'peer-expired',
  'peer-foreign',
  'app-lab',
  'person-dupont',
] as const;
export type DevPkiLeafName = (typeof DEV_PKI_LEAVES)[number];

const MSSGW_DEV = [
  { type: 'C', value: 'FR' },
  { type: 'O', value: 'MSSGW DEVELOPPEMENT' },
] as const;

export interface AuthorityProfile {
  readonly subject: DistinguishedName;
  /** Undefined for a self-signed root. */
  readonly issuer?: DevPkiAuthorityName;
  readonly validityYears: number;
  /** basicConstraints pathLenConstraint; undefined for a root (no limit). */
  readonly pathLength?: number;
  /** Publishes a CRL. The foreign root does not: nothing the gateway trusts refers to it. */
  readonly publishesCrl: boolean;
}

export const AUTHORITY_PROFILES: Readonly<Record<DevPkiAuthorityName, AuthorityProfile>> = {
  root: {
    subject: [...MSSGW_DEV, { type: 'CN', value: 'TEST AC RACINE IGC-SANTE ELEMENTAIRE MSSGW-DEV' }],
    validityYears: 10,
    // Empty, but needed: with CRLs configured, OpenSSL checks every link (CRL_CHECK_ALL).
    publishesCrl: true,
  },
  // Intermediates end before the root, as IGC-Santé's do; 8 years outlive every 3-year leaf.
  org: {
    subject: [...MSSGW_DEV, { type: 'CN', value: 'TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS MSSGW-DEV' }],
    issuer: 'root',
    validityYears: 8,
    pathLength: 0,
    publishesCrl: true,
  },
  pp: {
    subject: [...MSSGW_DEV, { type: 'CN', value: 'TEST AC IGC-SANTE ELEMENTAIRE PERSONNES MSSGW-DEV' }],
    issuer: 'root',
    validityYears: 8,
    pathLength: 0,
    publishesCrl: true,
  },
  'foreign-root': {
    subject: [...MSSGW_DEV, { type: 'CN', value: 'TEST AC RACINE ETRANGERE MSSGW-DEV' }],
    validityYears: 10,
    publishesCrl: false,
  },
};

export interface LeafProfile {
  readonly subject: DistinguishedName;
  readonly issuer: DevPkiAuthorityName;
  readonly extKeyUsage: readonly ExtendedKeyUsage[];
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  /** Validity window is one year long and ended a year ago. */
  readonly expired?: true;
  /** Listed (reason keyCompromise) in its issuer's CRL. */
  readonly revoked?: true;
  readonly nationalId?: string;
}

/** Organisation DN in DER order: C, [ST,] O, OU (structure id), CN (host) — printed CN first. */
function operatorDn(cn: string, ou: string, o: string, st?: string): DistinguishedName {
  return [
    { type: 'C', value: 'FR' },
    ...(st === undefined ? [] : [{ type: 'ST', value: st } as const]),
    { type: 'O', value: o },
    { type: 'OU', value: ou },
    { type: 'CN', value: cn },
  ];
}

const MTA = ['serverAuth', 'clientAuth'] as const;

/** A peer MTA: named after its host, reachable as localhost in tests. */
function peerMta(host: string, ou: string, o: string): LeafProfile {
  return {
    subject: operatorDn(host, ou, o),
    issuer: 'org',
    extKeyUsage: MTA,
    dnsNames: [host, 'localhost'],
    ipAddresses: ['127.0.0.1'],
  };
}

export const LEAF_PROFILES: Readonly<Record<DevPkiLeafName, LeafProfile>> = {
  gateway: {
    subject: operatorDn('localhost', '499000000000001', 'MSSGW Operateur Dev', 'Paris (75)'),
    issuer: 'org',
    // MSSANTE.md: the same certificate identifies our MTA inbound (server) and outbound (client).
    extKeyUsage: MTA,
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1', '::1'],
  },
  'peer-trusted': {
    ...peerMta(`mx.${PEER_DOMAIN}`, '499000000000002', 'Operateur Pair Dev'),
    subject: operatorDn(`mx.${PEER_DOMAIN}`, '499000000000002', 'Operateur Pair Dev', 'Rhone (69)'),
  },
  'peer-unlisted': peerMta('mx.unlisted.mssante.test', '499000000000003', 'Operateur Inconnu Dev'),
  'peer-revoked': {
    ...peerMta('mx.revoked.mssante.test', '499000000000004', 'Operateur Revoque Dev'),
    revoked: true,
  },
  'peer-expired': {
    ...peerMta('mx.expired.mssante.test', '499000000000005', 'Operateur Expire Dev'),
    expired: true,
  },
  'peer-foreign': {
    ...peerMta('mx.foreign.mssante.test', '499000000000006', 'Operateur Etranger Dev'),
    issuer: 'foreign-root',
  },
  'app-lab': {
    subject: operatorDn('LOGICIEL-LABO-DEV', '499000000000007', 'Laboratoire Dev'),
    issuer: 'org',
    // A software (APP mailbox) certificate only authenticates as a client.
    extKeyUsage: ['clientAuth'],
    dnsNames: [],
    ipAddresses: [],
  },
  'person-dupont': {
    // CPS-like: the national id is both the CN and the X.520 serialNumber attribute.
    subject: [
      { type: 'C', value: 'FR' },
      { type: 'O', value: 'CABINET DUPONT DEV' },
      { type: 'CN', value: DEV_PERSON_NATIONAL_ID },
      { type: 'SN', value: 'DUPONT' },
      { type: 'GN', value: 'Jeanne' },
      { type: 'serialNumber', value: DEV_PERSON_NATIONAL_ID },
    ],
    issuer: 'pp',
    extKeyUsage: ['clientAuth', 'emailProtection'],
    dnsNames: [],
    ipAddresses: [],
    nationalId: DEV_PERSON_NATIONAL_ID,
  },
};

/** RFC 4514 subject DN of every development certificate, as the manifest and whitelist print it. */
export const DEV_PKI_DN: Readonly<Record<DevPkiAuthorityName | DevPkiLeafName, string>> = Object.freeze(
  Object.fromEntries([
    ...DEV_PKI_AUTHORITIES.map((name) => [name, formatDn(AUTHORITY_PROFILES[name].subject)]),
    ...DEV_PKI_LEAVES.map((name) => [name, formatDn(LEAF_PROFILES[name].subject)]),
  ]) as Record<DevPkiAuthorityName | DevPkiLeafName, string>,
);

export interface DevWhitelistProfile {
  readonly domain: string;
  /** The leaf whose subject DN is the operator DN of the domain. */
  readonly leaf: DevPkiLeafName;
  readonly description: string;
  readonly responsibleContact: string;
  readonly supportContact: string;
}

/** The development whitelist: our domain with the gateway, the peer's with peer-trusted. */
export const DEV_WHITELIST: readonly DevWhitelistProfile[] = [
  {
    domain: DEV_DOMAIN,
    leaf: 'gateway',
    description: 'MSSGW Operateur Dev',
    responsibleContact: `dsi@${DEV_DOMAIN}`,
    supportContact: `support@${DEV_DOMAIN}`,
  },
  {
    domain: PEER_DOMAIN,
    leaf: 'peer-trusted',
    description: 'Operateur Pair Dev',
    responsibleContact: `dsi@${PEER_DOMAIN}`,
    supportContact: `support@${PEER_DOMAIN}`,
  },
];
