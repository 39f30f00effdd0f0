import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { tlsProfile } from '../../src/pki/index.js';

/**
 * The agency's side of the FHIR write interface, for tests (src/publication/fhir-patch.ts has the
 * contract): a real HTTPS server with a development-PKI certificate (peer-trusted, valid for
 * localhost) that requires a client certificate chained to the development authorities. It holds
 * Practitioner/Organization resources with identifiers and applies conditional FHIRPath Patch
 * `Parameters` (add, insert, replace, delete of a `telecom`): 200 with the patched resource, 404
 * when no resource matches the identifier, 412 when several do, 422 when a patch cannot apply
 * (issue `not-found` for a replace that selects nothing), and any status forced with `failNext`.
 */

export interface FhirResource {
  resourceType: string;
  id: string;
  identifier: Array<{ system: string; value: string }>;
  telecom?: Array<Record<string, unknown>>;
}

export interface FhirRecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly contentType: string | undefined;
  readonly body: unknown;
  /** Subject of the client certificate the server saw (`CN=...,O=...` order as Node prints it). */
  readonly clientSubject: string | undefined;
  readonly clientAuthorized: boolean;
  readonly status: number;
}

export interface FhirTestServer {
  /** `https://localhost:<port>/fhir` */
  readonly baseUrl: string;
  readonly requests: FhirRecordedRequest[];
  /** Adds (or replaces, by type and id) a resource. */
  put(resource: FhirResource): void;
  resource(resourceType: string, id: string): FhirResource | undefined;
  /** Every telecom value of a resource. */
  telecoms(resourceType: string, id: string): string[];
  /** The next `times` PATCH requests get `status` (and an OperationOutcome) without being applied. */
  failNext(status: number, times?: number): void;
  close(): Promise<void>;
}

type Part = { name: string } & Record<string, unknown>;

const MAILBOX = /^([A-Za-z]+)\.telecom\.where\(system = 'email' and value = '((?:[^'\\]|\\.)*)'\)$/;

class PatchFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function startFhirServer(pkiDir: string): Promise<FhirTestServer> {
  const file = (name: string) => readFileSync(path.join(pkiDir, name), 'utf8');
  const resources: FhirResource[] = [];
  const requests: FhirRecordedRequest[] = [];
  const forced: number[] = [];

  const handle = (req: IncomingMessage, res: ServerResponse, raw: string): number => {
    const socket = req.socket as TLSSocket;
    const peer = socket.getPeerX509Certificate();
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/fhir+json' });
      res.end(JSON.stringify(body));
      let parsed: unknown = raw;
      try {
        parsed = JSON.parse(raw);
      } catch {
        // recorded as text
      }
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        contentType: req.headers['content-type'],
        body: parsed,
        clientSubject: peer?.subject.replaceAll('\n', ','),
        clientAuthorized: socket.authorized,
        status,
      });
      return status;
    };
    const url = new URL(req.url ?? '/', 'https://localhost');
    const match = /^\/fhir\/([A-Za-z]+)$/.exec(url.pathname);
    if (req.method !== 'PATCH' || !match)
      return send(405, outcome('not-supported', 'only conditional PATCH'));
    if (!/^application\/fhir\+json/.test(req.headers['content-type'] ?? '')) {
      return send(415, outcome('not-supported', 'send application/fhir+json'));
    }
    const status = forced.shift();
    if (status !== undefined) return send(status, outcome('transient', `forced ${status}`));
    const type = match[1]!;
    const identifier = url.searchParams.get('identifier') ?? '';
    const bar = identifier.indexOf('|');
    const [system, value] = [identifier.slice(0, bar), identifier.slice(bar + 1)];
    const found = resources.filter(
      (r) => r.resourceType === type && r.identifier.some((i) => i.system === system && i.value === value),
    );
    if (found.length === 0)
      return send(404, outcome('not-found', `no ${type} with identifier ${identifier}`));
    if (found.length > 1) return send(412, outcome('multiple-matches', `${found.length} ${type} match`));
    const target = found[0]!;
    try {
      target.telecom = applyPatch(target, JSON.parse(raw) as { parameter?: Array<{ part?: Part[] }> });
      return send(200, target);
    } catch (err) {
      if (err instanceof PatchFailure) return send(err.status, outcome(err.code, err.message));
      return send(400, outcome('invalid', (err as Error).message));
    }
  };

  const server: Server = createServer(
    {
      cert: file('peer-trusted.chain.pem'),
      key: file('peer-trusted.key'),
      ca: ['root', 'org', 'pp'].map((n) => file(`ca/${n}.crt`)),
      ...tlsProfile({ minVersion: 'TLSv1.2', allowCbc: false }),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      let raw = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (raw += chunk));
      req.on('end', () => handle(req, res, raw));
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const find = (t: string, id: string) => resources.find((r) => r.resourceType === t && r.id === id);
  return {
    baseUrl: `https://localhost:${port}/fhir`,
    requests,
    put: (resource) => {
      const i = resources.findIndex((r) => r.resourceType === resource.resourceType && r.id === resource.id);
      if (i >= 0) resources.splice(i, 1);
      resources.push(structuredClone(resource));
    },
    resource: (t, id) => find(t, id),
    telecoms: (t, id) => (find(t, id)?.telecom ?? []).map((c) => String(c.value)),
    failNext: (status, times = 1) => {
      for (let i = 0; i < times; i++) forced.push(status);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function outcome(code: string, diagnostics: string): unknown {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics }] };
}

/** Applies a FHIRPath Patch to a copy of the resource's telecoms and returns them; all operations or none. */
function applyPatch(
  resource: FhirResource,
  patch: { parameter?: Array<{ part?: Part[] }> },
): Array<Record<string, unknown>> {
  const telecom = structuredClone(resource.telecom ?? []);
  for (const operation of patch.parameter ?? []) {
    const parts = operation.part ?? [];
    const get = (name: string) => parts.find((p) => p.name === name);
    const type = get('type')?.valueCode;
    const pathValue = get('path')?.valueString;
    const at = typeof pathValue === 'string' ? pathValue : '';
    const value = get('value')?.valueContactPoint as Record<string, unknown> | undefined;
    switch (type) {
      case 'add':
        if (at !== resource.resourceType || get('name')?.valueString !== 'telecom' || !value) {
          throw new PatchFailure(400, 'invalid', `unsupported add at ${at}`);
        }
        telecom.push(value);
        break;
      case 'insert': {
        const index = Number(get('index')?.valueInteger);
        if (at !== `${resource.resourceType}.telecom` || !value || !(index >= 0 && index <= telecom.length)) {
          throw new PatchFailure(400, 'invalid', `unsupported insert at ${at}`);
        }
        telecom.splice(index, 0, value);
        break;
      }
      case 'delete':
      case 'replace': {
        const selected = mailboxIndexes(resource.resourceType, at, telecom);
        if (selected.length > 1) throw new PatchFailure(422, 'multiple-matches', `${at} selects several`);
        const [index] = selected;
        if (type === 'delete') {
          if (index !== undefined) telecom.splice(index, 1);
          break;
        }
        if (index === undefined) throw new PatchFailure(422, 'not-found', `${at} selects nothing`);
        if (!value) throw new PatchFailure(400, 'invalid', 'replace without a value');
        telecom[index] = value;
        break;
      }
      default:
        throw new PatchFailure(400, 'invalid', `unsupported operation ${String(type)}`);
    }
  }
  return telecom;
}

function mailboxIndexes(resourceType: string, at: string, telecom: Array<Record<string, unknown>>): number[] {
  const m = MAILBOX.exec(at);
  if (!m || m[1] !== resourceType) throw new PatchFailure(400, 'invalid', `unsupported path ${at}`);
  const address = m[2]!.replace(/\\(.)/g, '$1');
  return telecom.flatMap((c, i) => (c.system === 'email' && c.value === address ? [i] : []));
}
