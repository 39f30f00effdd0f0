// A stand-in for a gateway process in embedded mode (test/integration/embedded.test.ts): starts the
// embedded Redis and Dovecot for the data directory given as argument, prints their pids as one
// JSON line, then waits until it is killed. Run with `node --import tsx`.
import { createLogger } from '../../src/observability/index.js';
import { startEmbeddedRedis } from '../../src/redis/index.js';
import { startEmbeddedDovecot } from '../../src/store/index.js';

const dataDir = process.argv[2];
if (!dataDir) throw new Error('usage: store-embedded-child.ts <dataDir>');
const logger = createLogger({ level: 'silent' });
const redis = await startEmbeddedRedis({ dataDir, logger });
const dovecot = await startEmbeddedDovecot({ dataDir, logger });
process.stdout.write(`${JSON.stringify({ redisPid: redis.pid, dovecotPid: dovecot.pid })}\n`);
// Keep the event loop alive until the test kills us.
setInterval(() => {}, 60_000);
