import type { QueueJobView } from './queue-routes.js';
import type { RunSummary } from '../lifecycle/index.js';
import type { DriftReport, PublicationState } from '../publication/index.js';
import type {
  AccessibleBal,
  Bal,
  BalActivity,
  BalMetadataPatch,
  BalPage,
  BalStatus,
  BalType,
  GrantRequest,
  GrantView,
  SubjectRequest,
} from '../registry/index.js';
import { GatewayError } from '../errors/index.js';
import { ACTOR_HEADER } from './admin-auth.js';
import type { SecretStatus } from './secret-status.js';
import { PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_PREFIX } from './problem.js';

/** A mailbox as `GET /v1/bals/:address` shows it: with its publication state when publication is on. */
export type BalView = Bal & { readonly publication?: PublicationState | null };

/** The API answered with a problem (or an unexpected response): it refused or failed the request. */
export class AdminApiError extends GatewayError {
  /** Catalogue code from the problem details (`HTTP_<status>` when the answer was not a problem). */
  readonly problemCode: string;
  readonly status: number;
  readonly detail: string;

  constructor(problemCode: string, status: number, detail: string) {
    super('ADMIN_API_REFUSED', `${detail} (${problemCode})`, { problemCode, status });
    this.name = 'AdminApiError';
    this.problemCode = problemCode;
    this.status = status;
    this.detail = detail;
  }
}

/** No answer at all: nothing listens at the URL, DNS failed, or the request timed out. */
export class AdminUnreachableError extends GatewayError {
  readonly url: string;

  constructor(url: string, reason: string, options?: ErrorOptions) {
    super('ADMIN_API_UNREACHABLE', `cannot reach the admin API at ${url} (${reason})`, { url }, options);
    this.name = 'AdminUnreachableError';
    this.url = url;
  }
}

export interface AdminClientOptions {
  /** Base URL of the admin API, e.g. http://127.0.0.1:9465. */
  readonly baseUrl: string;
  /** Bearer token (admin.tokenFile), when the API requires one. */
  readonly token?: string;
  /** Journaled as the author of changes, e.g. `cli:alice`. */
  readonly actor?: string;
  /** Per request; default 30 s. */
  readonly timeoutMs?: number;
}

/** A typed client of the admin API over node:http; used by the CLI. */
export class AdminClient {
  readonly #base: string;
  readonly #headers: Record<string, string>;
  readonly #timeoutMs: number;

  constructor(options: AdminClientOptions) {
    this.#base = options.baseUrl.replace(/\/+$/, '');
    this.#headers = { accept: `application/json, ${PROBLEM_CONTENT_TYPE}` };
    if (options.token !== undefined) this.#headers.authorization = `Bearer ${options.token}`;
    if (options.actor !== undefined) this.#headers[ACTOR_HEADER] = options.actor;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  get baseUrl(): string {
    return this.#base;
  }

  createBal(input: { address: string; type: string; owner: string } & BalMetadataPatch): Promise<Bal> {
    return this.#request<Bal>('POST', '/v1/bals', input);
  }

  listBals(
    query: { status?: BalStatus; type?: BalType; cursor?: string; limit?: number } = {},
  ): Promise<BalPage> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined) params.set(key, String(value));
    }
    const qs = params.size > 0 ? `?${params.toString()}` : '';
    return this.#request<BalPage>('GET', `/v1/bals${qs}`);
  }

  getBal(address: string): Promise<BalView> {
    return this.#request<BalView>('GET', balPath(address));
  }

  /** Changes the published metadata; null (or '') removes a text field. */
  updateBal(address: string, patch: BalMetadataPatch): Promise<Bal> {
    return this.#request<Bal>('PATCH', balPath(address), patch);
  }

  directoryDrift(): Promise<DriftReport> {
    return this.#request<DriftReport>('GET', '/v1/directory/drift');
  }
  /** Development only: the daily lifecycle run now, as if it were `at` (issue #14 item 9). */
  async lifecycleRunAt(at: Date): Promise<RunSummary> {
    return this.#request<RunSummary>('POST', '/v1/lifecycle/runs', { at: at.toISOString() });
  }

  suspendBal(address: string, reason?: string): Promise<Bal> {
    return this.#request<Bal>('POST', `${balPath(address)}/suspend`, reason === undefined ? {} : { reason });
  }

  resumeBal(address: string): Promise<Bal> {
    return this.#request<Bal>('POST', `${balPath(address)}/resume`);
  }

  deleteBal(address: string): Promise<Bal> {
    return this.#request<Bal>('DELETE', balPath(address));
  }

  listRights(address: string): Promise<{ items: GrantView[] }> {
    return this.#request('GET', `${balPath(address)}/rights`);
  }

  grantRight(address: string, request: GrantRequest): Promise<GrantView> {
    return this.#request('POST', `${balPath(address)}/rights`, request);
  }

  revokeRight(address: string, subject: SubjectRequest): Promise<GrantView> {
    const params = new URLSearchParams();
    if (subject.person !== undefined) params.set('person', subject.person);
    if (subject.certificateDn !== undefined) params.set('certificateDn', subject.certificateDn);
    return this.#request('DELETE', `${balPath(address)}/rights?${params.toString()}`);
  }

  balsForPerson(nationalId: string): Promise<{ nationalId: string; items: AccessibleBal[] }> {
    return this.#request('GET', `/v1/persons/${encodeURIComponent(nationalId.trim())}/bals`);
  }

  balActivity(address: string): Promise<BalActivity> {
    return this.#request('GET', `${balPath(address)}/activity`);
  }

  secretStatus(address: string): Promise<SecretStatus> {
    return this.#request('GET', `${balPath(address)}/secret`);
  }

  /** Sets or replaces the mailbox's secret; it travels in the body only, never in the URL. */
  setSecret(address: string, secret: string): Promise<void> {
    return this.#request('PUT', `${balPath(address)}/secret`, { secret });
  }

  removeSecret(address: string): Promise<void> {
    return this.#request('DELETE', `${balPath(address)}/secret`);
  }

  listQueue(options: { state?: string; limit?: number } = {}): Promise<{ items: QueueJobView[] }> {
    const params = new URLSearchParams();
    if (options.state) params.set('state', options.state);
    if (options.limit) params.set('limit', String(options.limit));
    const qs = params.size > 0 ? `?${params.toString()}` : '';
    return this.#request('GET', `/v1/queue${qs}`);
  }

  showQueueJob(id: string): Promise<QueueJobView> {
    return this.#request('GET', `/v1/queue/${encodeURIComponent(id)}`);
  }

  retryQueueJob(id: string): Promise<QueueJobView> {
    return this.#request('POST', `/v1/queue/${encodeURIComponent(id)}/retry`);
  }

  deleteQueueJob(id: string): Promise<QueueJobView> {
    return this.#request('DELETE', `/v1/queue/${encodeURIComponent(id)}`);
  }

  async #request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = new URL(`${this.#base}${path}`);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const deadline = AbortSignal.timeout(this.#timeoutMs);
    let answer: HttpAnswer;
    try {
      answer = await exchange(url, {
        method,
        // No Content-Type without a body: fastify refuses an empty body declared as JSON.
        headers:
          payload === undefined
            ? this.#headers
            : {
                ...this.#headers,
                'content-type': 'application/json',
                'content-length': String(Buffer.byteLength(payload)),
              },
        signal: deadline,
        ...(payload === undefined ? {} : { payload }),
      });
    } catch (err) {
      const reason = deadline.aborted ? 'no answer in time' : networkReason(err);
      throw new AdminUnreachableError(this.#base, reason, { cause: err });
    }
    // 204 No Content (secret set or removed) has no body to parse.
    if (answer.status >= 200 && answer.status < 300)
      return (answer.text === '' ? undefined : JSON.parse(answer.text)) as T;
    throw problemToError(answer, url.href);
  }
}

interface HttpAnswer {
  readonly status: number;
  readonly statusText: string;
  readonly text: string;
}

/**
 * One request and its whole answer, over node:http (node:https for an https:// URL) rather than
 * fetch: Node loads its fetch implementation (undici) on first use, about 100 ms of CPU, which was
 * a third of a CLI command that makes one request.
 */
async function exchange(
  url: URL,
  options: {
    method: string;
    headers: Record<string, string>;
    signal: AbortSignal;
    payload?: string;
  },
): Promise<HttpAnswer> {
  const { request } = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: options.method, headers: options.headers, signal: options.signal },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        // Closed before its end (the server went away, the deadline): Node fails the answer.
        res.on('error', reject);
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            statusText: res.statusMessage ?? '',
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(options.payload);
  });
}

function balPath(address: string): string {
  return `/v1/bals/${encodeURIComponent(address.trim())}`;
}

function problemToError(response: HttpAnswer, url: string): AdminApiError {
  try {
    const p = JSON.parse(response.text) as { type?: unknown; code?: unknown; detail?: unknown };
    const code =
      typeof p.code === 'string'
        ? p.code
        : typeof p.type === 'string' && p.type.startsWith(PROBLEM_TYPE_PREFIX)
          ? p.type.slice(PROBLEM_TYPE_PREFIX.length)
          : undefined;
    if (code !== undefined) {
      return new AdminApiError(
        code,
        response.status,
        typeof p.detail === 'string' ? p.detail : response.statusText,
      );
    }
  } catch {
    // Not JSON (a proxy's error page, say): reported below with the HTTP status.
  }
  return new AdminApiError(
    `HTTP_${response.status}`,
    response.status,
    `unexpected answer ${response.status} ${response.statusText} from ${url}; is this the mssgw admin API?`,
  );
}

/** A short reason for a failed request: the system error code (ECONNREFUSED, ENOTFOUND) when there is one. */
function networkReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string') return code;
  return err instanceof Error ? err.message : String(err);
}
