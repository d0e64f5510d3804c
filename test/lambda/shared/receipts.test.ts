import { randomUUID } from 'node:crypto';
import { findPolicyProblems } from '../../../lib/config/policy';
import { stageNames } from '../../../lib/config';
import { shippedStages } from '../../../lib/config/stages';
import {
  keyReference,
  keyReferenceText,
  ModelCodes,
  operatorReference,
  requestIdFromUserData,
  requestIdToUserData,
} from '../../../lambda/shared/receipts';

/** The receipt encoding of docs/credits-api.md ("Receipts"): every value round-trips or is refused. */

const u32Max = 0xffff_ffff;
const u64Max = (1n << 64n) - 1n;

describe('model codes (user_data_32)', () => {
  test.each(stageNames)(
    'every model of the shipped %s config round-trips through its ledger code',
    (stage) => {
      const { models } = shippedStages[stage];
      const codes = new ModelCodes(models);
      for (const model of models) {
        const code = codes.codeOf(model.id);
        expect(code).toBe(model.ledgerCode);
        expect(code).toBeGreaterThan(0);
        expect(code).toBeLessThanOrEqual(u32Max);
        expect(codes.modelOf(code!)).toBe(model.id);
      }
      expect(new Set(models.map((model) => model.ledgerCode)).size).toBe(models.length);
    },
  );

  test('a model keeps its code whatever the order of the list, and every stage agrees on it', () => {
    const [dev, ...others] = stageNames.map((stage) => shippedStages[stage].models);
    const reordered = new ModelCodes([...dev].reverse());
    for (const model of dev) expect(reordered.codeOf(model.id)).toBe(model.ledgerCode);
    for (const models of others)
      for (const model of models)
        expect(model.ledgerCode).toBe(dev.find((same) => same.id === model.id)?.ledgerCode);
  });

  test('an ambiguous config is refused: at synth (policy) and when a service starts', () => {
    const config = shippedStages.dev;
    const [first, second] = config.models;
    const clashing = [first, { ...second, ledgerCode: first.ledgerCode }];
    expect(findPolicyProblems({ ...config, models: clashing })).toContainEqual(
      expect.stringContaining('list a ledgerCode twice'),
    );
    expect(() => new ModelCodes(clashing)).toThrow(/share ledgerCode/);
    expect(() => new ModelCodes([{ id: 'zero', ledgerCode: 0 }])).toThrow(/u32 above 0/);
    expect(new ModelCodes(config.models).modelOf(u32Max)).toBeUndefined(); // a model since removed
  });
});

describe('request ids (user_data_128)', () => {
  test('our x-request-id (a UUID) round-trips through its 128 bits', () => {
    for (let index = 0; index < 100; index += 1) {
      const requestId = randomUUID();
      const value = requestIdToUserData(requestId)!;
      expect(value).toBeGreaterThan(0n);
      expect(value).toBeLessThan(1n << 128n);
      expect(requestIdFromUserData(value)).toBe(requestId);
    }
    const smallest = '00000000-0000-0000-0000-000000000001';
    expect(requestIdFromUserData(requestIdToUserData(smallest)!)).toBe(smallest);
    expect(requestIdToUserData('ABCDEF01-2345-4789-8BCD-EF0123456789')).toBe(
      requestIdToUserData('abcdef01-2345-4789-8bcd-ef0123456789'),
    );
  });

  test('anything that is not a UUID, and the nil UUID (zero means "any" in a filter), is refused', () => {
    for (const text of [
      '',
      'not-a-uuid',
      '00000000-0000-0000-0000-000000000000',
      'abcdef0123454789 8bcdef0123456789',
      'abcdef01-2345-4789-8bcd-ef01234567890',
    ])
      expect(requestIdToUserData(text)).toBeUndefined();
    expect(() => requestIdFromUserData(0n)).toThrow();
    expect(() => requestIdFromUserData(1n << 128n)).toThrow();
  });
});

describe('key and operator references (user_data_64, user_data_128)', () => {
  test('a key reference is a stable, non-zero u64, different per key', () => {
    const reference = keyReference('key_AbCdEfGh12345678');
    expect(reference).toBe(keyReference('key_AbCdEfGh12345678'));
    expect(reference).not.toBe(keyReference('key_AbCdEfGh12345679'));
    expect(reference).toBeGreaterThan(0n);
    expect(reference).toBeLessThanOrEqual(u64Max);
    expect(keyReferenceText(reference)).toMatch(/^[0-9a-f]{16}$/);
    expect(BigInt(`0x${keyReferenceText(reference)}`)).toBe(reference);
  });

  test('an operator reference is a stable, non-zero u128 of the idempotency key', () => {
    const reference = operatorReference('invoice-2026-1142');
    expect(reference).toBe(operatorReference('invoice-2026-1142'));
    expect(reference).not.toBe(operatorReference('invoice-2026-1143'));
    expect(reference).toBeGreaterThan(0n);
    expect(reference).toBeLessThan(1n << 128n);
  });
});
