import type { Config } from '../config/index.js';
import { authoritiesWithoutRevocation } from '../directory/index.js';
import { GatewayError } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import { type TrustMaterial, assertProductionTrust, ensureDevPki, loadTrustMaterial } from '../pki/index.js';

/** Our certificate and key, the authorities and the CRLs in service, reloadable without a restart. */
export interface TrustPart {
  current(): TrustMaterial;
  /**
   * Reloads from the configured files and the mirrored CRLs (OpenSSL uses the newest CRL of an
   * authority), keeping the previous material when the new one fails; then tells every TLS listener.
   */
  reload(mirroredCrlFiles: readonly string[]): void;
  /** A TLS listener that must rebuild its secure context after a reload. */
  onReload(listener: () => void): void;
}

/** Loads the trust material (generating the development PKI in development mode). */
export async function buildTrust(config: Config, logger: Logger): Promise<TrustPart> {
  if (config.mode === 'development') {
    const { generated } = await ensureDevPki(config.pkiDir);
    if (generated)
      logger.warn(
        { event: 'pki.dev.generated', dir: config.pkiDir },
        'development PKI generated (never use it in production)',
      );
  }
  let material = loadTrustMaterial(config.tls).material;
  if (config.mode === 'production') {
    assertProductionTrust(material);
    assertRevocationSources(config, material);
  }
  const listeners: Array<() => void> = [];
  return {
    current: () => material,
    reload: (mirroredCrlFiles) => {
      const log = logger.child({ event: 'gateway.trust_reload' });
      try {
        const tls = { ...config.tls, crlFiles: [...config.tls.crlFiles, ...mirroredCrlFiles] };
        const loaded = loadTrustMaterial(tls, material);
        if (config.mode === 'production') assertProductionTrust(loaded.material);
        material = loaded.material;
        for (const listener of listeners) listener();
        for (const st of loaded.staleCrls) log.error(st, 'revocation list unreadable; last good copy kept');
      } catch (err) {
        log.error({ err: (err as Error).message }, 'trust material reload failed; previous kept');
      }
    },
    onReload: (listener) => void listeners.push(listener),
  };
}

/**
 * Production: every trusted authority has a revocation list, from a file (tls.crlFiles, matched by
 * the CRL's issuer) or a mirror naming it (directory.crls[].issuer). The configuration checks
 * already refused a configuration with no source at all; this one needs the files read.
 */
function assertRevocationSources(config: Config, material: TrustMaterial): void {
  const mirrorIssuers = config.directory.crls.flatMap((m) => (m.issuer === undefined ? [] : [m.issuer]));
  const uncovered = authoritiesWithoutRevocation(
    material.authorities,
    material.crlByFile.values(),
    mirrorIssuers,
  );
  if (uncovered.length === 0) return;
  const names = uncovered.map((a) => a.subject.replace(/\n/g, ', ')).join('; ');
  throw new GatewayError(
    'PKI_NO_REVOCATION',
    `mode is production but no revocation list covers ${names}: add its CRL to tls.crlFiles or a mirror naming it as issuer to directory.crls`,
  );
}
