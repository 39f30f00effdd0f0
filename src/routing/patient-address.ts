/**
 * Citizen mailboxes of Mon espace santé are `<INS>@patient.mssante.fr` (MSSANTE.md "Mailboxes"):
 * the INS is the 13-digit NIR followed by its 2-digit key, 97 − (NIR mod 97).
 */
export const PATIENT_DOMAIN = 'patient.mssante.fr';

export function isValidIns(localPart: string): boolean {
  if (!/^[12]\d{14}$/.test(localPart)) return false;
  const nir = BigInt(localPart.slice(0, 13));
  const key = Number(localPart.slice(13));
  return key === 97 - Number(nir % 97n);
}
