export { MxServer } from './mx-server.js';
export { SubmissionServer } from './submission-server.js';
export type { SubmissionServerDeps } from './submission-server.js';
export type { MailboxLookup, MxServerDeps } from './mx-server.js';
export { replyLine, smtpError, smtpReplyFor } from './replies.js';
export { receivedHeader } from './received-header.js';
