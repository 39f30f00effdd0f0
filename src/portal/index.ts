export { buildPortal, type Portal } from './portal-server.js';
export { recordMailboxUses } from './mailbox-usage.js';
export { CSRF_COOKIE, LOGIN_COOKIE, SESSION_COOKIE } from './cookies.js';
export type { ClientEndpoints, NationalAddress, PortalDeps, PublicationView } from './portal-deps.js';
export {
  DEV_MAIL_CLIENT,
  DEV_MAIL_RESOURCE,
  DEV_PEOPLE,
  DEV_PROVIDER_CLIENT,
  startDevProvider,
  type DevProvider,
} from './dev-provider.js';
