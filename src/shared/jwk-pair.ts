import { generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';

const generate = promisify(generateKeyPair);

/** A key pair as JSON Web Keys (RFC 7517), private and public halves. */
export interface JwkPair {
  readonly privateJwk: Record<string, string>;
  readonly publicJwk: Record<string, string>;
}

/** The signature algorithms we make keys for (JWS names, RFC 7518 §3.1). */
export type JwkPairAlg = 'RS256' | 'PS256' | 'ES256';

/**
 * Generates a signing key pair and returns it already exported as JWKs, the export done by the
 * key-generation job itself.
 *
 * Why not generate a KeyObject/CryptoKey and export it afterwards (`key.export({ format: 'jwk' })`,
 * jose's `exportJWK`): in Node 20 the finished generation job's destructor locks the new key's
 * mutex, and the JWK export holds that same mutex while it allocates. A garbage collection during
 * the export that collects the job deadlocks the thread for good (seen: a test process asleep in
 * `~KeyGenJob` under `ExportJWKRsaKey`, a suite run that never ended). Exporting inside the job
 * keeps the job alive for the whole export; whoever needs a key object imports the JWK, which makes
 * a key of its own.
 */
export async function generateJwkPair(alg: JwkPairAlg): Promise<JwkPair> {
  const encoding = { publicKeyEncoding: { format: 'jwk' }, privateKeyEncoding: { format: 'jwk' } } as const;
  const { publicKey, privateKey } =
    alg === 'ES256'
      ? await generate('ec', { namedCurve: 'P-256', ...encoding } as never)
      : await generate('rsa', { modulusLength: 2048, ...encoding } as never);
  return {
    privateJwk: privateKey as unknown as Record<string, string>,
    publicJwk: publicKey as unknown as Record<string, string>,
  };
}
