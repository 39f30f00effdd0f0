import { defineConfig } from 'vitest/config';

// Integration tests start real Redis, Dovecot and gateway processes; they share one Redis and one
// Dovecot (started once by the global setup) and isolate themselves with unique prefixes, data
// directories and mailbox names.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
  },
});
