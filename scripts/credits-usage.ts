import { z } from 'zod';
import type { chargeAnswerSchema, chargesAnswerSchema } from '../lambda/credits/contract';
import type { output } from '../runtime/zod-mini';
import { formatMicros } from '../lambda/shared/money';
import { accountIdForUser } from '../lambda/credits/domain/ids';
import { costMicros } from '../lambda/proxy/pricing';
import type { ClientKeySet } from '../lambda/shared/client-keys';
import { keyReference, keyReferenceText, ModelCodes } from '../lambda/shared/receipts';
import type { EmbeddingModelConfig, ModelConfig } from '../lib/config/schema';

/**
 * The operators' usage export and reconciliation (`npm run credits -- usage | reconcile`), from the
 * ledger alone: every settled or released request of a period, paged out of the credits service
 * (`GET /api/v1/charges`, TigerBeetle's `query_transfers` on the usage code). Users and keys are
 * named from the key set (a key reference is 64 bits of SHA-256 over a key id; an account id is
 * derived from a user id), models from the stage config's ledger codes.
 *
 * Reconciliation compares what the ledger charged each request with what its tokens cost at the
 * model's price, `min(hold, ceil(tokens x price))`, as the proxy computes it. The tokens come from the
 * proxy's audit records (`chat_completion`, `provider_failure`): the same numbers, from the same
 * code path, that its PromptTokens and CompletionTokens metrics record, but one record per request
 * with its id, so a mismatch names its requests (the EMF metrics are per-model sums without ids).
 */

export type Charge = output<typeof chargeAnswerSchema>;
type ChargesPage = output<typeof chargesAnswerSchema>;

/** Pages of one export (8189 transfers each): about 8 million transfers; a longer period is refused. */
export const usageExportPagesMax = 1_000;

/** Every charge in [fromTimestamp, toTimestamp], oldest first, one credits call per page. */
export async function collectCharges(
  page: (fromTimestamp: string) => Promise<ChargesPage>,
  fromTimestamp: bigint,
): Promise<Charge[]> {
  const charges: Charge[] = [];
  let from: string | null = fromTimestamp.toString();
  for (let pages = 0; from !== null; pages += 1) {
    if (pages === usageExportPagesMax)
      throw new Error(
        `the period holds more than ${usageExportPagesMax} pages of transfers; export a shorter one`,
      );
    const answer = await page(from);
    charges.push(...answer.charges);
    from = answer.next_from;
  }
  return charges;
}

/** Names for what the ledger holds as numbers: users and keys from a key set, models from the config. */
export class UsageNames {
  private readonly users = new Map<string, string>();
  private readonly keys = new Map<string, string>();
  private readonly models: ModelCodes;

  constructor(models: readonly BilledModel[], keySet: ClientKeySet | undefined) {
    this.models = new ModelCodes(models);
    for (const entry of keySet?.keys ?? []) {
      this.users.set(accountIdForUser(entry.user_id).toString(), entry.user_id);
      this.keys.set(keyReferenceText(keyReference(entry.id)), entry.id);
    }
  }

  user(accountId: string): string {
    return this.users.get(accountId) ?? `account:${accountId}`;
  }

  key(reference: string | null): string {
    if (reference === null) return '';
    return this.keys.get(reference) ?? `keyref:${reference}`;
  }

  model(code: number | null): string {
    if (code === null) return '';
    return this.models.modelOf(code) ?? `code:${code}`;
  }
}

const dayOf = (timestamp: string): string =>
  new Date(Number(BigInt(timestamp) / 1_000_000n)).toISOString().slice(0, 10);

/** A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break. */
function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

export const usageCsvHeader =
  'day,user,key,model,settled_requests,released_requests,charged_micros,charged';

/** Charges summed per day (UTC, of the settlement), user, key and model; sorted. */
export function usageCsv(charges: readonly Charge[], names: UsageNames): string[] {
  const rows = new Map<
    string,
    { fields: string[]; settled: number; released: number; micros: bigint }
  >();
  for (const charge of charges) {
    const fields = [
      dayOf(charge.timestamp),
      names.user(charge.account_id),
      names.key(charge.key_ref),
      names.model(charge.model_code),
    ];
    const id = JSON.stringify(fields);
    const row = rows.get(id) ?? { fields, settled: 0, released: 0, micros: 0n };
    if (charge.status === 'settled') row.settled += 1;
    else row.released += 1;
    row.micros += charge.charged_micros;
    rows.set(id, row);
  }
  const lines = [...rows.values()]
    .sort((a, b) => (a.fields.join('\0') < b.fields.join('\0') ? -1 : 1))
    .map((row) =>
      [
        ...row.fields,
        String(row.settled),
        String(row.released),
        row.micros.toString(),
        formatMicros(row.micros),
      ]
        .map(csvField)
        .join(','),
    );
  return [usageCsvHeader, ...lines];
}

/** What the reconciliation reads of one audit record of a completion. */
const auditRecordSchema = z.object({
  audit_event: z.enum(['chat_completion', 'embeddings', 'provider_failure']),
  request_id: z.string(),
  model: z.string(),
  held_micros: z.string().regex(/^[0-9]+$/),
  prompt_tokens: z.number().int().nonnegative().optional(),
  completion_tokens: z.number().int().nonnegative().optional(),
  cached_prompt_tokens: z.number().int().nonnegative().optional(),
  cache_creation_tokens: z.number().int().nonnegative().optional(),
  reasoning_tokens: z.number().int().nonnegative().optional(),
});
type AuditRecord = z.infer<typeof auditRecordSchema>;

/**
 * The completions' audit records in a log: one JSON object per line, as the proxy writes them
 * (CloudWatch Logs exports them one per line; `npm run dev` prints them). Other lines are skipped.
 */
export function auditRecordsOf(text: string): AuditRecord[] {
  const records: AuditRecord[] = [];
  for (const line of text.split('\n')) {
    const start = line.indexOf('{');
    if (start < 0) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line.slice(start));
    } catch {
      continue;
    }
    const record = auditRecordSchema.safeParse(parsed);
    if (record.success) records.push(record.data);
  }
  return records;
}

export interface Mismatch {
  readonly requestId: string;
  readonly model: string;
  readonly ledgerMicros: bigint | undefined;
  readonly expectedMicros: bigint | undefined;
  readonly reason: 'amount_differs' | 'no_audit_record' | 'not_on_ledger';
}

export interface ModelReconciliation {
  readonly model: string;
  readonly requests: number;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly ledgerMicros: bigint;
  readonly expectedMicros: bigint;
}

/** A model the ledger charges for: a chat model, or an embedding model (input tokens only). */
export type BilledModel = ModelConfig | EmbeddingModelConfig;

/** The charge a record's tokens cost, as the proxy bills it (each part at its price): at most the hold. */
function expectedCharge(record: AuditRecord, model: BilledModel | undefined): bigint | undefined {
  if (!model) return undefined;
  if (record.prompt_tokens === undefined) return 0n;
  const chat = 'outputMicrosPerMillionTokens' in model;
  if (chat && record.completion_tokens === undefined) return 0n;
  const cost = costMicros(chat ? model : { ...model, outputMicrosPerMillionTokens: 0 }, {
    promptTokens: record.prompt_tokens,
    completionTokens: record.completion_tokens ?? 0,
    cachedPromptTokens: record.cached_prompt_tokens,
    cacheCreationTokens: record.cache_creation_tokens,
    reasoningTokens: record.reasoning_tokens,
  });
  const held = BigInt(record.held_micros);
  return cost > held ? held : cost;
}

/** Ledger charges against tokens x price, per model, with every request that does not match. */
export function reconcile(
  charges: readonly Charge[],
  records: readonly AuditRecord[],
  models: readonly BilledModel[],
  names: UsageNames,
): { models: ModelReconciliation[]; mismatches: Mismatch[] } {
  const byRequest = new Map(records.map((record) => [record.request_id, record]));
  const totals = new Map<string, ModelReconciliation>();
  const mismatches: Mismatch[] = [];
  const seen = new Set<string>();
  const add = (model: string, fields: Partial<ModelReconciliation>) => {
    const total = totals.get(model) ?? {
      model,
      requests: 0,
      promptTokens: 0,
      completionTokens: 0,
      ledgerMicros: 0n,
      expectedMicros: 0n,
    };
    totals.set(model, {
      model,
      requests: total.requests + (fields.requests ?? 0),
      promptTokens: total.promptTokens + (fields.promptTokens ?? 0),
      completionTokens: total.completionTokens + (fields.completionTokens ?? 0),
      ledgerMicros: total.ledgerMicros + (fields.ledgerMicros ?? 0n),
      expectedMicros: total.expectedMicros + (fields.expectedMicros ?? 0n),
    });
  };
  for (const charge of charges) {
    const model = names.model(charge.model_code);
    const ledgerMicros = charge.charged_micros;
    const record = charge.request_id === null ? undefined : byRequest.get(charge.request_id);
    if (charge.request_id !== null) seen.add(charge.request_id);
    // A release without a record charged nothing: there is nothing to reconcile.
    const expected = record
      ? expectedCharge(
          record,
          models.find((candidate) => candidate.id === record.model),
        )
      : ledgerMicros === 0n
        ? 0n
        : undefined;
    add(model, {
      requests: 1,
      promptTokens: record?.prompt_tokens ?? 0,
      completionTokens: record?.completion_tokens ?? 0,
      ledgerMicros,
      expectedMicros: expected ?? 0n,
    });
    if (expected === ledgerMicros) continue;
    mismatches.push({
      requestId: charge.request_id ?? `hold:${charge.hold_id}`,
      model,
      ledgerMicros,
      expectedMicros: expected,
      reason: record ? 'amount_differs' : 'no_audit_record',
    });
  }
  for (const record of records) {
    if (seen.has(record.request_id)) continue;
    const expected = expectedCharge(
      record,
      models.find((candidate) => candidate.id === record.model),
    );
    if (expected === 0n) continue; // released: nothing to find on the ledger's charges of the period
    add(record.model, { expectedMicros: expected ?? 0n });
    mismatches.push({
      requestId: record.request_id,
      model: record.model,
      ledgerMicros: undefined,
      expectedMicros: expected,
      reason: 'not_on_ledger',
    });
  }
  return {
    models: [...totals.values()].sort((a, b) => (a.model < b.model ? -1 : 1)),
    mismatches,
  };
}

/** The reconciliation as the operator reads it. */
export function reconciliationLines(result: ReturnType<typeof reconcile>): string[] {
  const micros = (value: bigint | undefined) => (value === undefined ? '-' : value.toString());
  const lines = [
    'model,requests,prompt_tokens,completion_tokens,ledger_charged_micros,tokens_x_price_micros,difference_micros',
    ...result.models.map((row) =>
      [
        row.model,
        row.requests,
        row.promptTokens,
        row.completionTokens,
        row.ledgerMicros,
        row.expectedMicros,
        row.ledgerMicros - row.expectedMicros,
      ].join(','),
    ),
  ];
  if (result.mismatches.length === 0)
    return [...lines, 'Reconciled: every charge matches its tokens x price.'];
  return [
    ...lines,
    `${result.mismatches.length} mismatch(es):`,
    ...result.mismatches.map(
      (mismatch) =>
        `  ${mismatch.requestId}  ${mismatch.model}  ledger ${micros(mismatch.ledgerMicros)}  tokens x price ${micros(mismatch.expectedMicros)}  (${mismatch.reason})`,
    ),
  ];
}
