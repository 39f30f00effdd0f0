import { expect } from 'vitest';

/** A response of the admin API, its JSON body parsed. */
export interface Answer {
  status: number;
  contentType: string;
  body: Record<string, unknown>;
}

/** One request to the admin API over real HTTP. `raw` sends a body verbatim (malformed JSON, forms). */
export async function call(
  h: { readonly url: string },
  method: string,
  path: string,
  options: { json?: unknown; raw?: string; contentType?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const body = options.raw ?? (options.json === undefined ? undefined : JSON.stringify(options.json));
  const headers: Record<string, string> = { ...options.headers };
  if (body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
  const response = await fetch(`${h.url}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
  });
  const text = await response.text();
  return {
    status: response.status,
    contentType: response.headers.get('content-type') ?? '',
    body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
  };
}

export function balPath(address: string, action = ''): string {
  return `/v1/bals/${encodeURIComponent(address)}${action}`;
}

/** Asserts an RFC 9457 problem with our code, and returns its detail. */
export function expectProblem(answer: Answer, status: number, code: string): string {
  expect(answer.status).toBe(status);
  expect(answer.contentType).toMatch(/^application\/problem\+json/);
  expect(answer.body).toMatchObject({ type: `urn:mssgw:error:${code}`, status, code });
  expect(answer.body.title).toEqual(expect.any(String));
  expect(answer.body.detail).toEqual(expect.any(String));
  expect(JSON.stringify(answer.body)).not.toMatch(/\n\s+at |node_modules|\.ts:\d+/);
  return answer.body.detail as string;
}
