import type { IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { tlsProfile, type TlsProfileOptions } from '../pki/index.js';
import { fhirRequest, type FhirRequest, type FhirSettings } from './fhir-patch.js';
import type { DirectoryTarget, MailboxEntry } from './mailbox-entry.js';
import type { DirectoryOperation } from './publication-state.js';
import { DirectoryCallError, type DirectoryAnswer, type Publisher } from './publisher.js';

/** Our IGC-Santé client certificate (with its chain), its key, and what verifies the directory. */
export interface FhirClientTls {
  readonly cert: string;
  readonly key: string;
  readonly ca: readonly string[];
  readonly crl: readonly string[];
}

export interface FhirPublisherOptions {
  readonly settings: FhirSettings;
  /**
   * Read at each call, so a reload of the trust material applies (the gateway's TrustMaterial
   * fits): mutual TLS with our certificate, the server verified against our authorities and CRLs.
   */
  readonly tls: () => FhirClientTls;
  readonly tlsProfile: TlsProfileOptions;
  /** Whole call: connection, TLS, request and answer. */
  readonly timeoutMs: number;
}

// An answer is an OperationOutcome or the patched resource: a few KiB; more is not read.
const MAX_ANSWER_BYTES = 256 * 1024;
const MAX_DETAIL = 300;
// Errors raised before a request could leave this machine (nothing can have changed remotely).
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

interface Answer {
  readonly status: number;
  readonly text: string;
}

/** The Publisher over the agency's FHIR PATCH interface (requests in fhir-patch.ts). */
export class FhirPublisher implements Publisher {
  readonly #options: FhirPublisherOptions;

  constructor(options: FhirPublisherOptions) {
    this.#options = options;
  }

  insert(entry: MailboxEntry): Promise<DirectoryAnswer> {
    return this.#call('insert', entry);
  }

  replace(entry: MailboxEntry): Promise<DirectoryAnswer> {
    return this.#call('replace', entry);
  }

  delete(target: DirectoryTarget): Promise<DirectoryAnswer> {
    return this.#call('delete', target);
  }

  async #call(operation: DirectoryOperation, subject: MailboxEntry): Promise<DirectoryAnswer> {
    const req = fhirRequest(this.#options.settings, operation, subject);
    const answer = await this.#send(req, operation);
    if (answer.status >= 200 && answer.status < 300) return { status: answer.status };
    throw refusal(req, operation, answer);
  }

  #send(req: FhirRequest, operation: DirectoryOperation): Promise<Answer> {
    const tls = this.#options.tls();
    const body = JSON.stringify(req.body);
    return new Promise<Answer>((resolve, reject) => {
      let secured = false;
      const fail = (err: Error & { code?: string }) => {
        const sent = secured && !NOT_SENT.has(err.code ?? '');
        // The timeout aborts the request through its signal (an AbortError).
        const timedOut = err.name === 'AbortError' || err.name === 'TimeoutError';
        const why = timedOut ? 'no answer in time' : (err.code ?? err.message);
        reject(
          new DirectoryCallError(
            'PUBLICATION_UNAVAILABLE',
            `the national directory could not be reached for ${req.resource} ${req.identifier} (${why})`,
            { operation, sent, detail: why },
            { cause: err },
          ),
        );
      };
      const request = httpsRequest(req.url, {
        method: req.method,
        headers: {
          'content-type': 'application/fhir+json',
          accept: 'application/fhir+json',
          'content-length': Buffer.byteLength(body),
        },
        ...tlsProfile(this.#options.tlsProfile),
        cert: tls.cert,
        key: tls.key,
        ca: [...tls.ca],
        crl: [...tls.crl],
        // A fresh connection per call: calls are few, and a reloaded certificate is used at once.
        agent: false,
        signal: AbortSignal.timeout(this.#options.timeoutMs),
      });
      request.on('socket', (socket) => {
        (socket as TLSSocket).once('secureConnect', () => {
          secured = true;
          // The national directory asking to renegotiate gets an error, not another handshake.
          (socket as TLSSocket).disableRenegotiation();
        });
      });
      request.on('error', fail);
      request.on('response', (res: IncomingMessage) => {
        readAnswer(res).then(resolve, fail);
      });
      request.end(body);
    });
  }
}

function readAnswer(res: IncomingMessage): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_ANSWER_BYTES) chunks.push(chunk);
    });
    res.on('end', () =>
      resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
    );
    res.on('error', reject);
  });
}

/** Turns a non-2xx answer into the error the publication rules act on. */
function refusal(req: FhirRequest, operation: DirectoryOperation, answer: Answer): DirectoryCallError {
  const { status } = answer;
  const outcome = operationOutcome(answer.text);
  const detail = outcome.diagnostics ?? `HTTP ${status}`;
  const facts = { operation, status, sent: true, detail };
  const what = `${req.resource} with identifier ${req.identifier}`;
  if (status === 404) {
    return new DirectoryCallError(
      'PUBLICATION_NOT_FOUND',
      `the national directory has no ${what} (404): check the owner's national id, or register the owner with the agency first`,
      facts,
    );
  }
  if (status === 412) {
    return new DirectoryCallError(
      'PUBLICATION_AMBIGUOUS',
      `several resources of the national directory match ${what} (412); the agency must resolve the duplicate`,
      facts,
    );
  }
  // A replace whose path selects nothing: FHIRPath Patch cannot apply it (assumed 422 with an
  // OperationOutcome issue `not-found`, as FHIR servers report unresolvable patch paths).
  if (operation === 'replace' && (status === 422 || status === 400) && outcome.codes.includes('not-found')) {
    return new DirectoryCallError(
      'PUBLICATION_ENTRY_MISSING',
      `the ${what} holds no entry of this mailbox to replace (${status})`,
      facts,
    );
  }
  if (status === 408 || status === 429 || status >= 500) {
    return new DirectoryCallError(
      'PUBLICATION_UNAVAILABLE',
      `the national directory failed on ${what} (${status}: ${detail}); the change is retried`,
      facts,
    );
  }
  return new DirectoryCallError(
    'PUBLICATION_REJECTED',
    `the national directory refused the change on ${what} (${status}: ${detail})`,
    facts,
  );
}

/** The issue codes and first diagnostics of an OperationOutcome answer; empty when it is none. */
function operationOutcome(text: string): { codes: string[]; diagnostics?: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { codes: [] };
  }
  const issues = (parsed as { resourceType?: unknown; issue?: unknown }).issue;
  if (!Array.isArray(issues)) return { codes: [] };
  const codes: string[] = [];
  let diagnostics: string | undefined;
  for (const issue of issues as Array<{ code?: unknown; diagnostics?: unknown }>) {
    if (typeof issue.code === 'string') codes.push(issue.code);
    if (diagnostics === undefined && typeof issue.diagnostics === 'string') {
      diagnostics = oneLine(issue.diagnostics);
    }
  }
  return diagnostics === undefined ? { codes } : { codes, diagnostics };
}

function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return clean.length > MAX_DETAIL ? `${clean.slice(0, MAX_DETAIL)}…` : clean;
}
