export { parseAddress, routeByDomain, routeLocal } from './route-recipient.js';
export type { MailboxStatusView, RecipientDecision } from './route-recipient.js';
