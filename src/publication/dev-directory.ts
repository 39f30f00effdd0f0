import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Server, createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { GatewayError } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import { tlsProfile } from '../pki/index.js';
import { normalisePersonId } from '../registry/index.js';
import { explainListen } from '../shared/index.js';
import { type DirectoryResource, applyFhirPatch } from './dev-directory-patch.js';

/**
 * A development stand-in for the national directory (issue #14 item 9): a real HTTPS FHIR server on
 * loopback that honours the write contract of fhir-patch.ts (conditional FHIRPath Patch found by
 * identifier: 200 with the patched resource, 404 when no resource has the identifier, 422 when the
 * patch cannot apply, 415 without application/fhir+json) and answers look-ups, so that publication,
 * unpublication and republication can be watched without the agency's service. It demands a client
 * certificate chained to our trusted authorities, as the agency does.
 *
 * Its population: every well-formed national id is a known person (`8`+RPPS, `0`+ADELI, under the
 * person system) or structure (type digit + register id, under the structure system), its resource
 * made on first use; any other identifier is unknown (404). Resources are kept in one JSON file, so
 * a restart keeps what was published. Never in production: the configuration refuses it there.
 *
 *   PATCH /fhir/<Resource>?identifier=<system>|<value>     apply a FHIRPath Patch
 *   GET   /fhir/<Resource>?identifier=<system>|<value>     search by identifier (Bundle)
 *   GET   /fhir/<Resource>?mailbox=<address>               search by published address (Bundle)
 */
export interface DevDirectoryOptions {
  readonly host: string;
  readonly port: number;
  /** Server certificate (PEM, chain included), its key, and the authorities a client must chain to. */
  readonly tls: () => { readonly cert: string; readonly key: string; readonly ca: readonly string[] };
  readonly personResource: string;
  readonly personIdentifierSystem: string;
  readonly structureResource: string;
  readonly structureIdentifierSystem: string;
  /** JSON file holding the resources. */
  readonly file: string;
  readonly logger: Logger;
}

export interface DevDirectory {
  /** `https://localhost:<port>/fhir` */
  readonly baseUrl: string;
  readonly address: AddressInfo;
  stop(): Promise<void>;
}

const STRUCTURE_ID = /^[0-9][0-9A-Za-z]{8,14}$/;
/** A request body larger than this is refused (one patch is a few kilobytes). */
const MAX_BODY = 256 * 1024;

export async function startDevDirectory(o: DevDirectoryOptions): Promise<DevDirectory> {
  const resources = load(o.file);
  const save = () => {
    mkdirSync(path.dirname(o.file), { recursive: true });
    writeFileSync(`${o.file}.tmp`, JSON.stringify(resources, null, 1));
    renameSync(`${o.file}.tmp`, o.file);
  };
  const known = (type: string, system: string, value: string): boolean =>
    (type === o.personResource &&
      system === o.personIdentifierSystem &&
      normalisePersonId(value) === value) ||
    (type === o.structureResource && system === o.structureIdentifierSystem && STRUCTURE_ID.test(value));
  /** The resources with this identifier: the one of the population, made on first use. */
  const byIdentifier = (type: string, system: string, value: string): DirectoryResource[] => {
    const found = resources.filter(
      (r) => r.resourceType === type && r.identifier.some((i) => i.system === system && i.value === value),
    );
    if (found.length > 0 || !known(type, system, value)) return found;
    const made: DirectoryResource = {
      resourceType: type,
      id: `dev-${type.toLowerCase()}-${value}`,
      identifier: [{ system, value }],
      telecom: [],
    };
    resources.push(made);
    return [made];
  };

  const handle = (req: IncomingMessage, url: URL, raw: string): [number, unknown] => {
    const match = /^\/fhir\/([A-Za-z]+)$/.exec(url.pathname);
    if (!match) return [404, outcome('not-found', `no endpoint ${url.pathname}`)];
    const type = match[1]!;
    if (req.method === 'GET') {
      const mailbox = url.searchParams.get('mailbox');
      const identifier = url.searchParams.get('identifier');
      const found =
        mailbox !== null
          ? resources.filter(
              (r) =>
                r.resourceType === type &&
                (r.telecom ?? []).some((t) => t.system === 'email' && t.value === mailbox),
            )
          : identifier !== null
            ? byIdentifier(type, ...splitIdentifier(identifier))
            : [];
      return [200, bundle(found)];
    }
    if (req.method !== 'PATCH') return [405, outcome('not-supported', 'PATCH or GET only')];
    if (!/^application\/fhir\+json/.test(req.headers['content-type'] ?? '')) {
      return [415, outcome('not-supported', 'send application/fhir+json')];
    }
    const identifier = url.searchParams.get('identifier') ?? '';
    const found = byIdentifier(type, ...splitIdentifier(identifier));
    if (found.length === 0) return [404, outcome('not-found', `no ${type} with identifier ${identifier}`)];
    if (found.length > 1) return [412, outcome('multiple-matches', `${found.length} ${type} match`)];
    const target = found[0]!;
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return [400, outcome('invalid', 'the body is not JSON')];
    }
    const result = applyFhirPatch(target, body);
    if (!result.ok) return [result.status, outcome(result.code, result.message)];
    target.telecom = result.telecom;
    save();
    return [200, target];
  };

  const respond = (req: IncomingMessage, res: ServerResponse, raw: string) => {
    const url = new URL(req.url ?? '/', 'https://localhost');
    let status: number;
    let body: unknown;
    try {
      [status, body] = handle(req, url, raw);
    } catch (err) {
      [status, body] = [500, outcome('exception', 'stand-in failure')];
      o.logger.error({ event: 'dev_directory.error', err }, 'development directory failed a request');
    }
    res.writeHead(status, { 'content-type': 'application/fhir+json' });
    res.end(JSON.stringify(body));
    o.logger.info(
      { event: 'dev_directory.request', method: req.method, path: url.pathname, status },
      'development directory request',
    );
  };

  const material = o.tls();
  const server: Server = createServer(
    {
      cert: material.cert,
      key: material.key,
      ca: [...material.ca],
      ...tlsProfile({ minVersion: 'TLSv1.2', allowCbc: false }),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      let raw = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => {
        raw += chunk;
        if (raw.length > MAX_BODY) {
          res.writeHead(413, { 'content-type': 'application/fhir+json' });
          res.end(JSON.stringify(outcome('too-long', 'request body too large')));
          req.destroy();
        }
      });
      req.on('end', () => respond(req, res, raw));
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch(explainListen('development directory', 'publication.devDirectory.port', o.host, o.port));
  const address = server.address() as AddressInfo;
  const baseUrl = `https://localhost:${address.port}/fhir`;
  o.logger.warn(
    { event: 'dev_directory.started', baseUrl, file: o.file },
    'development stand-in of the national directory started (never in production)',
  );
  return {
    baseUrl,
    address,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function load(file: string): DirectoryResource[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (Array.isArray(parsed)) return parsed as DirectoryResource[];
  } catch {
    // Reported below.
  }
  throw new GatewayError(
    'CONFIG_INVALID',
    `${file} (the development directory's resources) is not a JSON array: remove it to start afresh`,
    { file },
  );
}

function splitIdentifier(identifier: string): [string, string] {
  const bar = identifier.lastIndexOf('|');
  return bar < 0 ? ['', identifier] : [identifier.slice(0, bar), identifier.slice(bar + 1)];
}

function outcome(code: string, diagnostics: string): unknown {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics }] };
}

function bundle(resources: readonly DirectoryResource[]): unknown {
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    total: resources.length,
    entry: resources.map((resource) => ({ resource })),
  };
}
