import { copyFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/app/index.js';
import { devPkiSettings } from '../../src/pki/index.js';
import { call } from '../helpers/admin-http.js';
import { pkiFile, scratchDir, startTestGateway } from '../helpers/gateway.js';
import { inject } from 'vitest';

/**
 * Issue #7, certificates in production: the gateway takes a renewed certificate and key (and the
 * trust store and CRLs) without a restart, on `POST /v1/reload` (or SIGHUP), and says how long the
 * one in service has left.
 */

let gw: Gateway;
let certFile: string;
let keyFile: string;

beforeAll(async () => {
  const dir = scratchDir('renewal');
  const dev = devPkiSettings(inject('pkiDir'));
  certFile = path.join(dir, 'gateway.chain.pem');
  keyFile = path.join(dir, 'gateway.key');
  copyFileSync(dev.tls.certFile, certFile);
  copyFileSync(dev.tls.keyFile, keyFile);
  gw = await startTestGateway({ overrides: { tls: { certFile, keyFile } } });
});
afterAll(async () => {
  await gw?.stop();
});

function presentedCn(port: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const s = tls.connect(
      {
        port,
        host: '127.0.0.1',
        ca: pkiFile('ca/root.crt'),
        servername: 'localhost',
        rejectUnauthorized: false,
      },
      () => {
        const cn = s.getPeerCertificate().subject?.CN;
        s.end();
        resolve(cn);
      },
    );
    s.on('error', reject);
  });
}

describe('certificate renewal without a restart', () => {
  it('serves the renewed certificate after POST /v1/reload; the expiry metric follows', async () => {
    const port = gw.addresses.submissionTls!.port;
    const before = await presentedCn(port);
    // The renewed certificate: another leaf of the development PKI stands in for it.
    copyFileSync(path.join(inject('pkiDir'), 'peer-trusted.chain.pem'), certFile);
    copyFileSync(path.join(inject('pkiDir'), 'peer-trusted.key'), keyFile);
    const answer = await call({ url: `http://127.0.0.1:${gw.addresses.admin!.port}` }, 'POST', '/v1/reload');
    expect(answer.status).toBe(200);
    expect(answer.body.reloaded).toBe(true);
    expect(Number.isNaN(Date.parse(String(answer.body.certificateNotAfter)))).toBe(false);
    const after = await presentedCn(port);
    expect(before).not.toBe(after);
    expect(after).toBe('mx.peer.mssante.test');
    const metrics = await (await fetch(`http://127.0.0.1:${gw.addresses.metrics!.port}/metrics`)).text();
    const seconds = Number(/^mssgw_tls_certificate_expiry_seconds (\S+)$/m.exec(metrics)?.[1]);
    expect(seconds).toBeCloseTo(
      (Date.parse(String(answer.body.certificateNotAfter)) - Date.now()) / 1000,
      -2,
    );
  });
});
