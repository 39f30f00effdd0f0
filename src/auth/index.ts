export type {
  Access,
  AuthOutcome,
  AuthRequest,
  Channel,
  ClientAuthenticator,
  Principal,
  Right,
  SaslMechanism,
  Scope,
  TlsFacts,
} from './types.js';
export { AuthFailure, isAuthFailure } from './auth-failure.js';
export { principalIdentity } from './auth-events.js';
export type { AuthObserver } from './auth-events.js';
export { certificatePrincipal } from './certificate-principal.js';
export type {
  CertificatePrincipal,
  CertificateVerdict,
  ClientCertificateFacts,
} from './certificate-principal.js';
export {
  DEV_CLIENT_ID,
  DEV_ISSUER_NAME,
  DEV_ISSUER_URL,
  DEV_TOKEN_MAX_TTL_SECONDS,
  devIssuerConfig,
  devIssuerFiles,
  effectiveIssuers,
  ensureDevIssuer,
  mintDevToken,
} from './dev-issuer.js';
export type { DevIssuerFiles, MintDevTokenOptions } from './dev-issuer.js';
export { FailureLimiter, LOCK_INDEX_CAP, credentialKind, sourceId } from './failure-limiter.js';
export type {
  AttemptKey,
  CredentialKind,
  FailureLimiterOptions,
  FailureRecord,
  LimitCheck,
  LimitScope,
} from './failure-limiter.js';
export { GatewayAuthenticator } from './gateway-authenticator.js';
export type { AuthRegistry, GatewayAuthenticatorOptions } from './gateway-authenticator.js';
export { IssuerUnavailableError } from './jwks-source.js';
export type { JwksSourceOptions } from './jwks-source.js';
export { parseNationalId } from './national-id.js';
export {
  LOGIN_CHALLENGES,
  SASL_MAX_IDENTITY_BYTES,
  SASL_MAX_PASSWORD_BYTES,
  SASL_MAX_RESPONSE_BYTES,
  decodeExternal,
  decodeLoginField,
  decodeOauthbearer,
  decodePlain,
  decodeSaslBase64,
  decodeXoauth2,
  isOauthbearerErrorAck,
  oauthbearerErrorChallenge,
  saslErrorChallenge,
  xoauth2ErrorChallenge,
} from './sasl.js';
export type { BearerResponse, PlainResponse } from './sasl.js';
export {
  DEFAULT_SCRYPT_COST,
  SECRET_MAX_BYTES,
  SECRET_MIN_LENGTH,
  SecretStore,
  hashSecret,
  verifySecretHash,
} from './secrets.js';
export type { ScryptCost, SecretStoreOptions } from './secrets.js';
export { SessionWatch } from './session-watch.js';
export type {
  CutReason,
  Reauthorisation,
  Reauthorise,
  SessionEntry,
  SessionIndex,
  SessionWatchOptions,
  WatchedSession,
} from './session-watch.js';
export { JwtTokenVerifier, TOKEN_ALGORITHMS } from './token-verifier.js';
export type { JwtTokenVerifierOptions, TokenIssuer, TokenVerifier, VerifiedToken } from './token-verifier.js';
