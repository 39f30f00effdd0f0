import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GatewayError } from '../errors/index.js';

/**
 * The embedded Dovecot's master password: generated once, kept in a file only the gateway's user
 * can read, and reused on every start, so that whatever was configured with it (another gateway
 * process on this machine, an operator's script) keeps working across restarts. Never logged.
 */
export async function loadOrCreateMasterPassword(secretFile: string): Promise<string> {
  const dir = path.dirname(secretFile);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  try {
    // 'wx' fails if the file exists: two starts racing keep the first secret, not the last.
    await writeFile(secretFile, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  await chmod(secretFile, 0o600);
  const secret = (await readFile(secretFile, 'utf8')).trim();
  if (secret.length < 16 || /[\s:]/.test(secret)) {
    throw new GatewayError(
      'CONFIG_INVALID',
      `${secretFile} does not hold a usable master password (at least 16 characters, no spaces or ':'); ` +
        'delete it to have a new one generated',
      { file: secretFile },
    );
  }
  return secret;
}
