export { attributesFromSubject, canonicalDn, dnAttribute, normalizeDn, parseDn, presentedDn } from './dn.js';
export type { DnAttribute } from './dn.js';
export { classifyVerifyError, issuedByOneOf, judgePeer } from './peer-verdict.js';
export type { PeerTlsFacts, PeerVerdict, VerifyFailure, WhitelistView } from './peer-verdict.js';
export { TLS12_CBC_SUITES, TLS12_GCM_SUITES, TLS13_SUITES, cipherList, tlsProfile } from './tls-profile.js';
export type { TlsProfileOptions } from './tls-profile.js';
export { assertProductionTrust, crlToPem, loadTrustMaterial } from './trust-material.js';
export type { TrustFiles, TrustLoadResult, TrustMaterial } from './trust-material.js';
export {
  DEV_DOMAIN,
  DEV_PERSON_NATIONAL_ID,
  DEV_PKI_DN,
  DEV_PKI_LEAVES,
  PEER_DOMAIN,
  devPkiSettings,
  ensureDevPki,
  generateDevPki,
  readDevPkiManifest,
} from './dev-pki.js';
export type { DevPkiManifest } from './dev-pki.js';
