// National person id (MSSANTE.md "Client access"): `8` + the 11-digit RPPS number, or `0` + the
// 9-character ADELI number (two department characters, 2A/2B in Corsica, then seven digits).
// One rule for the whole gateway: a PER mailbox records its owner, a grant its delegate, and a token
// or a certificate names a person, all in this form. It lives in shared/ so that a token's subject
// can be checked without loading the registry (and, through it, the PKI) first.
const PERSON_ID = /^(?:8[0-9]{11}|0(?:[0-9]{2}|2[AB])[0-9]{7})$/;

/** Trims and upper-cases a national person id (ADELI 2A/2B); null unless it is `8`+RPPS or `0`+ADELI. */
export function normalisePersonId(input: string): string | null {
  const id = input.trim().toUpperCase();
  return PERSON_ID.test(id) ? id : null;
}
