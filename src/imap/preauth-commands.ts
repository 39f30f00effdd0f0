import type { Arg, RawCommand } from './command-syntax.js';

/**
 * The commands the gateway answers itself, before login (RFC 9051 §6.1 any state, §6.2 not
 * authenticated state; RFC 2971 ID), decoded from their syntax with no I/O. Every other command is
 * not valid in this state and gets a BAD.
 */
export type PreauthCommand =
  | { readonly name: 'CAPABILITY' | 'NOOP' | 'LOGOUT' | 'STARTTLS' | 'ID' }
  | {
      readonly name: 'AUTHENTICATE';
      /** Upper-cased SASL mechanism name. */
      readonly mechanism: string;
      /** SASL-IR initial response (RFC 4959 §3) as sent: base64, `=` when empty; undefined when absent. */
      readonly initialResponse: string | undefined;
    }
  | { readonly name: 'LOGIN'; readonly user: string; readonly password: string };

export type DecodeResult =
  { readonly ok: true; readonly command: PreauthCommand } | { readonly ok: false; readonly text: string };

/** RFC 2971 §3.3: at most 30 field-value pairs, fields of 30 octets, values of 1024. */
const MAX_ID_PAIRS = 30;
const MAX_ID_FIELD_OCTETS = 30;
const MAX_ID_VALUE_OCTETS = 1024;

function bad(text: string): DecodeResult {
  return { ok: false, text };
}

/** astring (RFC 9051 §9): an atom, a quoted string or a literal; UTF-8 text. */
function astring(arg: Arg | undefined): string | undefined {
  if (arg?.type === 'atom') return arg.value;
  if (arg?.type === 'string') return arg.value.toString('utf8');
  return undefined;
}

function isNil(arg: Arg | undefined): boolean {
  return arg?.type === 'atom' && arg.value.toUpperCase() === 'NIL';
}

/** `ID ( *(string SP nstring) )` or `ID NIL` (RFC 2971 §4). The content is read, never used. */
function decodeId(args: readonly Arg[]): DecodeResult {
  const [params, ...extra] = args;
  if (extra.length > 0 || params === undefined) return bad('ID takes one argument');
  if (isNil(params)) return { ok: true, command: { name: 'ID' } };
  if (params.type !== 'list') return bad('ID expects a parenthesised list or NIL');
  const items = params.items;
  if (items.length % 2 !== 0 || items.length / 2 > MAX_ID_PAIRS) return bad('ID expects field-value pairs');
  for (let i = 0; i < items.length; i += 2) {
    const field = items[i];
    const value = items[i + 1];
    if (field?.type !== 'string' || !(value?.type === 'string' || isNil(value))) {
      return bad('ID fields are strings and values strings or NIL');
    }
    if (field.value.length > MAX_ID_FIELD_OCTETS) return bad('ID field longer than 30 octets');
    if (value?.type === 'string' && value.value.length > MAX_ID_VALUE_OCTETS)
      return bad('ID value longer than 1024 octets');
  }
  return { ok: true, command: { name: 'ID' } };
}

/** `AUTHENTICATE SP auth-type [SP (base64 / "=")]` (RFC 9051 §6.2.2, RFC 4959 §3). */
function decodeAuthenticate(args: readonly Arg[]): DecodeResult {
  const [mechanism, response, ...extra] = args;
  if (mechanism?.type !== 'atom' || extra.length > 0) return bad('AUTHENTICATE expects a mechanism name');
  if (response === undefined) {
    return {
      ok: true,
      command: { name: 'AUTHENTICATE', mechanism: mechanism.value.toUpperCase(), initialResponse: undefined },
    };
  }
  // The SASL codecs check the base64 itself (RFC 4648 §4); here it only has to be an atom.
  if (response.type !== 'atom') return bad('Initial response must be base64');
  return {
    ok: true,
    command: {
      name: 'AUTHENTICATE',
      mechanism: mechanism.value.toUpperCase(),
      initialResponse: response.value,
    },
  };
}

/** `LOGIN SP userid SP password`, both astrings (RFC 9051 §6.2.3). */
function decodeLogin(args: readonly Arg[]): DecodeResult {
  const [userArg, passwordArg, ...extra] = args;
  const user = astring(userArg);
  const password = astring(passwordArg);
  if (user === undefined || password === undefined || extra.length > 0) {
    return bad('LOGIN expects a user name and a password');
  }
  return { ok: true, command: { name: 'LOGIN', user, password } };
}

export function decodePreauthCommand(raw: RawCommand): DecodeResult {
  switch (raw.name) {
    case 'CAPABILITY':
    case 'NOOP':
    case 'LOGOUT':
    case 'STARTTLS':
      return raw.args.length === 0
        ? { ok: true, command: { name: raw.name } }
        : bad(`${raw.name} takes no argument`);
    case 'ID':
      return decodeId(raw.args);
    case 'AUTHENTICATE':
      return decodeAuthenticate(raw.args);
    case 'LOGIN':
      return decodeLogin(raw.args);
    default:
      return bad('Command unknown or not valid before login');
  }
}
