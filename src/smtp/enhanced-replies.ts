import type { SMTPServer } from 'smtp-server';

const ENHANCED_PREFIX = /^[245]\.\d{1,3}\.\d{1,3} /;

interface ConnectionLike {
  id: string;
  send(code: number, data: unknown, context?: unknown): void;
}

/**
 * smtp-server derives the enhanced status code of a hook's error from the reply code alone (a 550 is
 * always `5.1.1`), which would mislabel every trust refusal. Our replies (hook errors, the DATA 250)
 * carry their own code at the start of the text (replies.ts); for those, this wrapper tells the
 * library not to add another. Other
 * replies keep the library's codes. Installed per connection from onConnect; the exact-reply tests
 * catch a library change that breaks it.
 */
export function adoptEnhancedCodes(server: SMTPServer, sessionId: string): void {
  const connections = (server as unknown as { connections: Set<ConnectionLike> }).connections;
  for (const connection of connections) {
    if (connection.id !== sessionId) continue;
    const send = connection.send.bind(connection);
    connection.send = (code, data, context) =>
      typeof data === 'string' && ENHANCED_PREFIX.test(data)
        ? send(code, data, false)
        : send(code, data, context);
    return;
  }
}
