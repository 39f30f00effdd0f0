export { MxServer } from './mx-server.js';
export type { MailboxLookup, MxServerDeps } from './mx-server.js';
export { replyLine, smtpError, smtpReplyFor } from './replies.js';
export { receivedHeader } from './received-header.js';
