/**
 * Distinguished-name normalisation. MSSANTE.md: "Compare DNs exactly after normalising spacing and
 * attribute order". A DN is reduced to its attributes (type, value), types upper-cased through one
 * alias table, values unescaped (RFC 4514 §3) with runs of white space folded, then sorted; values
 * keep their case, since the whitelist compares them exactly.
 */
export interface DnAttribute {
  readonly type: string;
  readonly value: string;
}

const TYPE_ALIASES: Readonly<Record<string, string>> = {
  S: 'ST',
  STATEORPROVINCENAME: 'ST',
  E: 'EMAILADDRESS',
  EMAIL: 'EMAILADDRESS',
  G: 'GN',
  GIVENNAME: 'GN',
  SURNAME: 'SN',
  COMMONNAME: 'CN',
  ORGANIZATIONNAME: 'O',
  ORGANIZATIONALUNITNAME: 'OU',
  COUNTRYNAME: 'C',
  LOCALITYNAME: 'L',
  STREETADDRESS: 'STREET',
  '2.5.4.3': 'CN',
  '2.5.4.4': 'SN',
  '2.5.4.5': 'SERIALNUMBER',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.42': 'GN',
  '1.2.840.113549.1.9.1': 'EMAILADDRESS',
};

function canonicalType(type: string): string {
  const t = type
    .trim()
    .toUpperCase()
    .replace(/^OID\./, '');
  return TYPE_ALIASES[t] ?? t;
}

/**
 * White space folded, and Unicode in NFC: a DN spelled with combining accents (NFD, as some tools
 * write `é`) is the same DN as its precomposed twin, in a certificate or in the whitelist alike.
 */
function foldSpace(value: string): string {
  return value.normalize('NFC').replace(/\s+/g, ' ').trim();
}

/** Splits an RFC 4514 string into attributes; `,`, `;` separate RDNs and `+` multi-valued parts. */
export function parseDn(dn: string): DnAttribute[] {
  const attrs: DnAttribute[] = [];
  let type = '';
  let value = '';
  let inValue = false;
  let quoted = false;
  const push = () => {
    if (type.trim() !== '' || value.trim() !== '') {
      // Left a SyntaxError: test/unit/dn.test.ts pins the class; callers wrap it with their code.
      // eslint-disable-next-line no-restricted-syntax
      if (!inValue) throw new SyntaxError(`attribute without '=' in DN: ${JSON.stringify(dn)}`);
      attrs.push({ type: canonicalType(type), value: foldSpace(value) });
    }
    type = '';
    value = '';
    inValue = false;
  };
  for (let i = 0; i < dn.length; i++) {
    const ch = dn[i]!;
    if (!inValue) {
      if (ch === '=') inValue = true;
      else if (ch === ',' || ch === ';' || ch === '+') push();
      else type += ch;
      continue;
    }
    if (ch === '\\' && i + 1 < dn.length) {
      const hex = dn.slice(i + 1, i + 3);
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        // Hex pairs encode UTF-8 bytes; gather consecutive pairs before decoding.
        const bytes: number[] = [];
        while (dn[i] === '\\' && /^[0-9a-fA-F]{2}$/.test(dn.slice(i + 1, i + 3))) {
          bytes.push(parseInt(dn.slice(i + 1, i + 3), 16));
          i += 3;
        }
        i -= 1;
        value += Buffer.from(bytes).toString('utf8');
      } else {
        value += dn[i + 1];
        i += 1;
      }
    } else if (ch === '"') {
      quoted = !quoted;
    } else if (!quoted && (ch === ',' || ch === ';' || ch === '+')) {
      push();
    } else {
      value += ch;
    }
  }
  push();
  // eslint-disable-next-line no-restricted-syntax -- as above: the class is pinned by a test
  if (attrs.length === 0) throw new SyntaxError('empty DN');
  return attrs;
}

/** Attributes from Node's `getPeerCertificate().subject` object (values may be arrays). */
export function attributesFromSubject(
  subject: Readonly<Record<string, string | string[] | undefined>>,
): DnAttribute[] {
  return Object.entries(subject).flatMap(([type, v]) =>
    (Array.isArray(v) ? v : v === undefined ? [] : [v]).map((value) => ({
      type: canonicalType(type),
      value: foldSpace(value),
    })),
  );
}

function escapeValue(value: string): string {
  return value.replace(/[\\,+"<>;=]/g, (c) => `\\${c}`).replace(/^[ #]|[ ]$/g, (c) => `\\${c}`);
}

/**
 * A certificate subject as presented, in RFC 4514 string form: its RDNs last-to-first (the ASN.1
 * sequence starts with C), types as Node names them, values exactly as in the certificate (spacing
 * and case kept, special characters escaped). For people reading trace headers; compare with
 * canonicalDn. Node groups repeated types (two OU) in one array, so their relative order to other
 * types is not recoverable; they stay together.
 */
export function presentedDn(subject: Readonly<Record<string, string | string[] | undefined>>): string {
  return Object.entries(subject)
    .flatMap(([type, v]) =>
      (Array.isArray(v) ? v : v === undefined ? [] : [v]).map((value) => `${type}=${escapeValue(value)}`),
    )
    .reverse()
    .join(',');
}

/** The canonical form two DNs are compared by. */
export function canonicalDn(attrs: readonly DnAttribute[]): string {
  return [...attrs]
    .map((a) => `${a.type}=${escapeValue(a.value)}`)
    .sort()
    .join(',');
}

export function normalizeDn(dn: string): string {
  return canonicalDn(parseDn(dn));
}

/** The first value of an attribute type, e.g. CN. */
export function dnAttribute(attrs: readonly DnAttribute[], type: string): string | undefined {
  const t = canonicalType(type);
  return attrs.find((a) => a.type === t)?.value;
}
