/**
 * Citizen mailboxes of Mon espace santé are `<INS>@patient.mssante.fr` (MSSANTE.md "Mailboxes"):
 * the INS is the 13-character NIR followed by its 2-digit key, 97 − (NIR mod 97).
 */
export const PATIENT_DOMAIN = 'patient.mssante.fr';

/**
 * sex (1 or 2), year, month, department, commune, order, key. People born in Corsica have `2A`
 * or `2B` in place of the department digits; addresses reach us lower-cased, so either case.
 */
const INS = /^[12]\d{4}(?:\d{2}|2[ab])\d{8}$/i;

/**
 * For the key, the NIR rules read the Corsican departments `2A` as `19` and `2B` as `18`
 * (MSSANTE.md "Mailboxes"), which keeps the number 13 digits long.
 */
function nirNumber(nir: string): bigint {
  const department = nir.slice(5, 7).toUpperCase();
  const digits = department === '2A' ? '19' : department === '2B' ? '18' : department;
  return BigInt(nir.slice(0, 5) + digits + nir.slice(7));
}

export function isValidIns(localPart: string): boolean {
  if (!INS.test(localPart)) return false;
  const key = Number(localPart.slice(13));
  return key === 97 - Number(nirNumber(localPart.slice(0, 13)) % 97n);
}
