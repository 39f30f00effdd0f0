import { readFileSync } from 'node:fs';

export interface OpenFilesLimit {
  readonly soft: number;
  readonly hard: number;
}

/** The process's RLIMIT_NOFILE, from /proc/self/limits (Linux); undefined elsewhere. */
export function openFilesLimit(): OpenFilesLimit | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return undefined;
  }
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(text);
  if (!m) return undefined;
  const n = (v: string) => (v === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(v));
  return { soft: n(m[1]!), hard: n(m[2]!) };
}

export type OpenFilesOutcome =
  | { readonly kind: 'enough'; readonly limit: OpenFilesLimit; readonly needed: number }
  | { readonly kind: 'short'; readonly limit: OpenFilesLimit | undefined; readonly needed: number };

/**
 * Every connection costs a descriptor (an IMAP session two: the client and the store), so the limit
 * must cover the configured connection limits. Node raises its soft RLIMIT_NOFILE to the hard limit
 * when it starts (it cannot go further, and neither can we without privileges): what is in force
 * now is what we get. Where it is too low only the operator can help (systemd `LimitNOFILE=`,
 * `ulimit -Hn`), so the outcome says so and the caller logs it.
 */
export function checkOpenFiles(needed: number): OpenFilesOutcome {
  const limit = openFilesLimit();
  return limit && limit.soft >= needed ? { kind: 'enough', limit, needed } : { kind: 'short', limit, needed };
}
