import { readFile } from 'node:fs/promises';
import type { Clock } from '../shared/index.js';
import { GatewayError } from '../errors/index.js';
import { Whitelist } from './whitelist.js';
import { parseWhitelistXml } from './whitelist-parser.js';

/**
 * Reads and indexes a whitelist file; throws WHITELIST_INVALID naming the file and the problem
 * (malformed entries are left out while their share is at most `maxInvalidShare`).
 */
export async function loadWhitelistFile(
  file: string,
  clock: Clock,
  maxInvalidShare: number,
): Promise<Whitelist> {
  let xml: Buffer;
  try {
    xml = await readFile(file);
  } catch (err) {
    throw new GatewayError('WHITELIST_INVALID', `cannot read whitelist ${file}: ${(err as Error).message}`, {
      file,
    });
  }
  try {
    return new Whitelist(parseWhitelistXml(xml, maxInvalidShare), file, clock.now());
  } catch (err) {
    if (err instanceof GatewayError) {
      throw new GatewayError(err.code, `${file}: ${err.message}`, { file }, { cause: err });
    }
    throw err;
  }
}
