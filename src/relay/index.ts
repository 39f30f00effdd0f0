export { connectRemote, connectTrustedRemote } from './connect-remote.js';
export type {
  ConnectRemoteOptions,
  ConnectTrustedRemoteOptions,
  RemoteTlsSession,
  TrustedRemoteSession,
} from './connect-remote.js';
export { orderMx, resolveDestination, systemMxLookup } from './mx-resolver.js';
export type {
  MxLookup,
  MxRecord,
  RemoteHost,
  ResolveDestinationOptions,
  RouteTarget,
  SystemMxLookupOptions,
} from './mx-resolver.js';
export { RELAY_FAILURES, RelayError } from './relay-error.js';
export type { RelayErrorDetails, RelayFailureReason } from './relay-error.js';
export { peerListsCurrentUntil, peerRevocation } from './peer-revocation.js';
export type { PeerRevocation } from './peer-revocation.js';
export { REMOTE_REFUSALS, judgeRemote } from './remote-verdict.js';
export type {
  RemoteRefusalReason,
  RemoteTlsFacts,
  RemoteVerdict,
  RemoteWhitelistView,
} from './remote-verdict.js';
export { relayReplyReader } from './smtp-reply-reader.js';
export type { SmtpReply, SmtpReplyReader } from './smtp-reply-reader.js';
export { RELAY_STATUS_DETAIL, TRUST_FAILURES } from './relay-error.js';
export { RelayTransport } from './relay-transport.js';
export type { RelayAttempt, RelayStats, RelayTransportOptions } from './relay-transport.js';
export { DotStuffer, capabilitiesOf, sendTransaction } from './smtp-transaction.js';
export type {
  OutboundRecipient,
  OutboundTransaction,
  RecipientReply,
  SessionCapabilities,
} from './smtp-transaction.js';
