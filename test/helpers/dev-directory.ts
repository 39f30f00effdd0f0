import { request } from 'node:https';
import type { Gateway } from '../../src/app/index.js';
import { freePort } from './free-port.js';
import { identity, pkiFile, startTestGateway } from './gateway.js';

/** A test gateway publishing to its development directory stand-in, whose FHIR root is `base`. */
export async function startDevDirectoryGateway(
  publication: Record<string, unknown> = {},
): Promise<{ gw: Gateway; base: string }> {
  const port = await freePort();
  const gw = await startTestGateway({
    overrides: {
      publication: {
        enabled: true,
        devDirectory: { enabled: true, port },
        retryInitialSeconds: 0.2,
        retryMaxSeconds: 1,
        ...publication,
      },
    },
  });
  return { gw, base: `https://localhost:${port}/fhir` };
}

export interface DirectoryAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** One HTTPS request to the stand-in, presenting `peer-trusted` unless `cert` is false. */
export function directoryCall(
  url: string,
  options: { method?: string; cert?: boolean; body?: string } = {},
): Promise<DirectoryAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? 'GET',
        ca: pkiFile('ca/root.crt'),
        ...(options.cert === false ? {} : identity('peer-trusted')),
        headers: options.body ? { 'content-type': 'application/fhir+json' } : {},
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }),
        );
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}
