import { domainToASCII } from 'node:url';

/**
 * The one mail address and domain parser (STYLE.md "Helpers written again in another folder").
 * The canonical form of an address, used for every comparison, key and look-up:
 * - surrounding white space is removed;
 * - the local part is an RFC 5321 §4.1.2 Dot-string of ASCII atext, lower-cased (MSSanté mailboxes
 *   are case-insensitive; quoted local parts are legal SMTP but no MSSanté client produces them, and
 *   they make addresses ambiguous in the directory);
 * - the domain loses one trailing dot (the DNS root, RFC 1034 §3.1: `op.mssante.fr.` is
 *   `op.mssante.fr`), is lower-cased and, when it has non-ASCII letters, converted to its IDNA
 *   A-label form (RFC 5890, UTS #46 via `node:url`'s domainToASCII: `hôpital.mssante.fr` is
 *   `xn--hpital-ixa.mssante.fr`), then must be an RFC 1035 §2.3.1 host name of at least two labels;
 * - RFC 5321 §4.5.3.1: local part at most 64 octets, domain at most 255, address at most 254.
 */

export const MAX_LOCAL_PART = 64;
export const MAX_DOMAIN = 255;
export const MAX_ADDRESS = 254;

// RFC 5321 §4.1.2 Dot-string: atoms of atext separated by single dots (already lower-case here).
const DOT_STRING = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
// RFC 1035 §2.3.1 preferred name syntax (letters, digits, inner hyphens), labels of 1 to 63 octets.
const DOMAIN_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** An address in canonical form, split. */
export interface MailAddress {
  readonly local: string;
  readonly domain: string;
  /** `local@domain`, canonical. */
  readonly address: string;
}

/** A parse result that says what to fix when the input is refused. */
export type Parsed<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

/** Checks a mail domain and returns its canonical form, or what is wrong with it. */
export function checkDomain(input: string): Parsed<string> {
  let domain = input.trim().toLowerCase();
  if (domain.endsWith('.')) domain = domain.slice(0, -1);
  if (domain === '') return { ok: false, problem: 'the domain is empty' };
  // ASCII names are kept as they are (so a refusal quotes what was given); others go through IDNA.
  if (/[^\x21-\x7e]/.test(domain)) {
    const ascii = domainToASCII(domain);
    if (ascii === '') return { ok: false, problem: hostNameProblem(domain) };
    domain = ascii;
  }
  if (domain.length > MAX_DOMAIN) {
    return {
      ok: false,
      problem: `the domain has ${domain.length} characters; the maximum is ${MAX_DOMAIN}`,
    };
  }
  const labels = domain.split('.');
  if (labels.length < 2 || !labels.every((l) => DOMAIN_LABEL.test(l))) {
    return { ok: false, problem: hostNameProblem(domain) };
  }
  return { ok: true, value: domain };
}

function hostNameProblem(domain: string): string {
  return (
    `the domain "${domain}" must be a host name such as op.example.fr: dot-separated labels of letters, ` +
    'digits and inner hyphens, each 1 to 63 characters'
  );
}

/** Checks a bare `local@domain` address and returns its canonical form, or what is wrong with it. */
export function checkAddress(input: string): Parsed<MailAddress> {
  const trimmed = input.trim().toLowerCase();
  if (trimmed === '') return { ok: false, problem: 'it is empty; give local@domain' };
  if (/[<>"]/.test(trimmed) || /\s/.test(trimmed)) {
    return {
      ok: false,
      problem: 'give the bare address local@domain, without a display name, quotes or spaces',
    };
  }
  const at = trimmed.lastIndexOf('@');
  const local = at < 0 ? trimmed : trimmed.slice(0, at);
  if (/[^\x21-\x7e]/.test(local)) {
    return {
      ok: false,
      problem: "only ASCII letters, digits and . ! # $ % & ' * + / = ? ^ _ ` { | } ~ - are allowed",
    };
  }
  if (at < 0) return { ok: false, problem: 'it has no "@"; give local@domain' };
  if (local === '') return { ok: false, problem: 'the part before "@" is empty' };
  if (local.length > MAX_LOCAL_PART) {
    return {
      ok: false,
      problem: `the part before "@" has ${local.length} characters; the maximum is ${MAX_LOCAL_PART}`,
    };
  }
  if (!DOT_STRING.test(local)) {
    return {
      ok: false,
      problem:
        'the part before "@" must be words of letters, digits and !#$%&\'*+/=?^_`{|}~- separated by single dots, ' +
        'not starting or ending with a dot (and only one "@")',
    };
  }
  const rawDomain = trimmed.slice(at + 1);
  if (rawDomain === '' || rawDomain === '.') return { ok: false, problem: 'the domain after "@" is empty' };
  const domain = checkDomain(rawDomain);
  if (!domain.ok) return domain;
  const address = `${local}@${domain.value}`;
  if (address.length > MAX_ADDRESS) {
    return {
      ok: false,
      problem: `it is ${address.length} characters long; the maximum is ${MAX_ADDRESS}`,
    };
  }
  return { ok: true, value: { local, domain: domain.value, address } };
}

/** Canonical domain, or undefined when it is not a valid mail domain. */
export function normalizeDomain(input: string): string | undefined {
  const domain = checkDomain(input);
  return domain.ok ? domain.value : undefined;
}

/** Canonical address split in its parts, or undefined when it is not a plain `local@domain`. */
export function parseAddress(input: string): MailAddress | undefined {
  const address = checkAddress(input);
  return address.ok ? address.value : undefined;
}

/** Canonical address, or undefined when it is not a plain `local@domain`. */
export function normalizeAddress(input: string): string | undefined {
  return parseAddress(input)?.address;
}

/**
 * The key to store or look up an address under: its canonical form, or, when it is not a valid
 * address, the trimmed lower-cased input (a stable key that matches no stored mailbox, since
 * those are canonical). For look-ups of addresses a client gave, which must not throw.
 */
export function addressKey(input: string): string {
  return normalizeAddress(input) ?? input.trim().toLowerCase();
}
