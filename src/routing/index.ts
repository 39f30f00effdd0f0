export { routeByDomain, routeLocal } from './route-recipient.js';
export type { MailboxStatusView, RecipientDecision } from './route-recipient.js';
export { PATIENT_DOMAIN, isValidIns } from './patient-address.js';
export { routeSubmission } from './route-submission.js';
export type { SubmissionRoute, TrustedDomains } from './route-submission.js';
export { DELEGATE_HEADER, checkEnvelopeSender, checkHeaderSenders } from './sender-policy.js';
export type { HeaderSenders, SenderDecision } from './sender-policy.js';
