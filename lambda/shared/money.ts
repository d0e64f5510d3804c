/**
 * Money is an integer number of micro-units of the currency (1 unit = 1,000,000 micros), a bigint
 * end to end, and is shown as a decimal string with six places, never a float. Shared by the credits
 * service (which parses amounts, lambda/credits/domain/amount.ts), the proxy (which shows costs and
 * balances in its headers and errors) and the operator scripts.
 */

export const microsPerUnit = 1_000_000n;
export const amountFractionDigitsMax = 6;

/** 12500000n -> "12.500000"; always 6 decimal places, never a float. */
export function formatMicros(micros: bigint): string {
  if (micros < 0n) return `-${formatMicros(-micros)}`;
  const units = micros / microsPerUnit;
  const fraction = (micros % microsPerUnit).toString().padStart(amountFractionDigitsMax, '0');
  return `${units}.${fraction}`;
}
