import { chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { embeddedStoreDir } from '../../src/app/index.js';
import { createLogger } from '../../src/observability/index.js';
import { checkStoreHealth, startEmbeddedDovecot } from '../../src/store/index.js';
import { scratchDir } from '../helpers/gateway.js';

describe('where the embedded Dovecot keeps its files', () => {
  it('in the data directory when every parent is searchable', async () => {
    const dataDir = path.join(scratchDir('open'), 'var');
    expect(await embeddedStoreDir(dataDir, path.join(scratchDir('root'), 'mssgw'))).toBe(dataDir);
  });

  it('elsewhere, at the same place every time, when a parent is private (a clone under /root)', async () => {
    const home = scratchDir('home');
    chmodSync(home, 0o700);
    const dataDir = path.join(home, 'clone', 'var');
    mkdirSync(dataDir, { recursive: true });
    const root = path.join(scratchDir('lib'), 'mssgw');
    const storeDir = await embeddedStoreDir(dataDir, root);
    expect(path.dirname(storeDir)).toBe(root);
    expect(await embeddedStoreDir(dataDir, root)).toBe(storeDir);
    expect(await embeddedStoreDir(path.join(home, 'other', 'var'), root)).not.toBe(storeDir);
    // And a Dovecot really runs there.
    const dovecot = await startEmbeddedDovecot({
      dataDir: storeDir,
      logger: createLogger({ level: 'silent' }),
    });
    try {
      expect(await checkStoreHealth(dovecot.imap, dovecot.lmtp)).toEqual({ imap: true, lmtp: true });
    } finally {
      await dovecot.stop();
    }
  });
});
