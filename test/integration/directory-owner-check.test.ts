import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/app/index.js';
import { scratchDir, startTestGateway, uniqueBal } from '../helpers/gateway.js';
import { eventually } from '../helpers/mailbox.js';
import { EXTRACTION_HEADER, extractionLine } from '../helpers/national-data.js';

/**
 * Issue #5, lookups used by the rest of the gateway: a PER mailbox already listed in the national
 * extraction can only be created for the person listed there (national id 8 + RPPS).
 */

const system = { kind: 'system', id: 'test' } as const;
let gw: Gateway;
let listed: string;

beforeAll(async () => {
  listed = uniqueBal('listed');
  const file = path.join(scratchDir('extraction'), 'Extraction_Correspondance_MSSante.txt');
  // extractionLine(…, 1) lists the address for RPPS 10000000001, national id 810000000001.
  writeFileSync(file, `${EXTRACTION_HEADER}\n${extractionLine(listed, 1)}\n`);
  gw = await startTestGateway({ overrides: { directory: { extraction: { source: file } } } });
  await eventually(
    () => gw.mirrors.directory.isKnown(listed),
    (known) => known,
  );
});
afterAll(async () => {
  await gw?.stop();
});

describe('mailbox creation checked against the national directory', () => {
  it('refuses a PER mailbox listed for another person, with the id to use', async () => {
    await expect(
      gw.registry.create({ address: listed, type: 'PER', owner: '810000000002' }, system),
    ).rejects.toThrow(/listed in the national directory for another person \(810000000001\)/);
    expect(await gw.registry.get(listed)).toBeNull();
  });

  it('creates it for the person listed, and any address the directory does not list', async () => {
    await expect(
      gw.registry.create({ address: listed, type: 'PER', owner: '810000000001' }, system),
    ).resolves.toMatchObject({ address: listed, owner: '810000000001' });
    const fresh = uniqueBal('fresh');
    await expect(
      gw.registry.create({ address: fresh, type: 'PER', owner: '810000000002' }, system),
    ).resolves.toMatchObject({ address: fresh });
  });
});
