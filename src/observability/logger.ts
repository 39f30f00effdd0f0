import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/**
 * Structured JSON logs (STYLE.md convention 8). Each connection gets a child logger carrying its
 * connection id. The redaction list is a safety net: code must never pass a secret to a logger.
 */
export function createLogger(
  options: { level: LevelWithSilent; name?: string },
  destination?: pino.DestinationStream,
): Logger {
  return pino(
    {
      name: options.name ?? 'mssgw',
      level: options.level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          'password',
          'token',
          'secret',
          'key',
          '*.password',
          '*.token',
          '*.secret',
          '*.key',
          'authorization',
        ],
        censor: '[redacted]',
      },
    },
    destination ?? pino.destination({ dest: 2, sync: false }),
  );
}
