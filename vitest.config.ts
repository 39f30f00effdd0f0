import { defineConfig } from 'vitest/config';

// Integration tests start real Redis, Dovecot and gateway processes; they share one Redis and one
// Dovecot (started once by the global setup) and isolate themselves with unique prefixes, data
// directories and mailbox names.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/global-setup.ts'],
    // Where an unhandled Redis rejection came from (see the file).
    setupFiles: ['test/setup/redis-origins.ts'],
    // Backstops for a hang, not measures of speed: on a busy 2-core machine one gateway process
    // takes up to ~30 s to be ready and a test may start three. Each wait inside a test has its own
    // shorter deadline that names what did not happen.
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
  },
});
