import fc from 'fast-check';
import { ledgerAmountMax, parseAmount } from '../../../lambda/credits/domain/amount';
import { formatMicros } from '../../../lambda/shared/money';

const rules = { allowZero: false, microsMax: ledgerAmountMax };

describe('DATA-06: amounts are exact integers of micro-units', () => {
  test.each([
    ['100.00', 100_000_000n],
    ['0.000001', 1n],
    ['12.5', 12_500_000n],
    ['7', 7_000_000n],
    ['340282366920938463463374607431768.211455', ledgerAmountMax],
  ])('amount %s is %s micros', (amount, micros) => {
    expect(parseAmount({ amount }, rules)).toEqual({ ok: true, micros });
  });

  test.each([
    [{ amount: 1.5 }, /not a JSON number/],
    [{ amount: '1e3' }, /no sign, exponent/],
    [{ amount: '-5.00' }, /no sign, exponent/],
    [{ amount: '+5' }, /no sign, exponent/],
    [{ amount: ' 5' }, /no sign, exponent/],
    [{ amount: '1,000.00' }, /separators/],
    [{ amount: '0.0000001' }, /more than 6 decimal places/],
    [{ amount: '0' }, /greater than zero/],
    [{ amount: '0.000000' }, /greater than zero/],
    [{ amount: '340282366920938463463374607431768.211456' }, /beyond the ledger range/],
    [{ amount: '9'.repeat(60) }, /beyond the ledger range/],
    [{ amount_micros: -1 }, /must not be negative/],
    [{ amount_micros: 1.5 }, /must be an integer/],
    [{ amount_micros: '12.5' }, /digits only/],
    [{ amount_micros: 2 ** 60 }, /must be an integer \(a string for large values\)/],
    [{ amount: '1', amount_micros: '1' }, /exactly one of/],
    [{}, /exactly one of/],
    [{ amount: null }, /decimal string/],
  ])('%j is refused', (body, message) => {
    const parsed = parseAmount(body, rules);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.message).toMatch(message);
  });

  test('zero is accepted where meaningful (settling a hold for nothing)', () => {
    expect(parseAmount({ amount: '0' }, { allowZero: true, microsMax: 10n })).toEqual({
      ok: true,
      micros: 0n,
    });
  });

  test('the per-operation maximum is enforced with the limit in the message', () => {
    expect(
      parseAmount({ amount: '10.000001' }, { allowZero: false, microsMax: 10_000_000n }),
    ).toEqual({
      ok: false,
      message: 'amount exceeds the maximum of 10.000000 for this operation',
    });
  });

  test('format and parse are inverse for every amount in range', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: ledgerAmountMax }), (micros) => {
        expect(parseAmount({ amount: formatMicros(micros) }, rules)).toEqual({ ok: true, micros });
        expect(parseAmount({ amount_micros: micros.toString() }, rules)).toEqual({
          ok: true,
          micros,
        });
      }),
    );
  });
});
