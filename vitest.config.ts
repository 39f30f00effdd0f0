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
    // One library-internal rejection is let through, and only that one. BullMQ probes each new
    // connection's Redis version (INFO) in a promise of its own; when an in-process gateway stops
    // while that probe is in flight, the probe fails with ioredis's "Connection is closed." and
    // nothing inside BullMQ handles it (test/setup/redis-origins.ts named the origin in a quiet
    // run). The gateway's process does the same while stopping (src/main.ts). Every other
    // unhandled error still fails the run.
    onUnhandledError(error) {
      const stack = String(error.stack ?? '');
      if (error.message === 'Connection is closed.' && stack.includes('getRedisVersionAndType')) return false;
    },
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
  },
});
