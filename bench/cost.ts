/**
 * The cost model: what one job uses on AWS (metered by the benchmark), priced with the list
 * prices of bench/prices.json. Pure arithmetic, pinned by test/unit/cost.test.ts.
 *
 * ```ts
 * const estimate = estimateCost(usagePerJob, prices, { dynamo: 'provisioned', utilisation: 0.7 });
 * estimate.total; // USD per million jobs
 * ```
 */
import pricesJson from './prices.json' with { type: 'json' };

export interface Price {
  usd: number;
  per: number;
  unit: string;
  /** When it was last checked against its source. */
  date: string;
  source: string;
  note?: string;
}

export interface Prices {
  region: string;
  currency: string;
  dynamodb: { writeRequestUnits: Price; readRequestUnits: Price; writeCapacityUnitHours: Price; readCapacityUnitHours: Price; storageGbMonths: Price };
  sqs: { standardRequests: Price };
  lambda: { arm64GbSeconds: Price; requests: Price };
  apiGateway: { httpApiRequests: Price };
  cloudwatchLogs: { ingestedGb: Price };
  logVolume: { lambdaPlatformBytesPerInvocation: number; apiAccessLogBytesPerRequest: number };
}

export const prices: Prices = pricesJson;

export const KiB = 1024;
/** AWS bills GB as 2^30 bytes (GB-seconds use memory MB / 1024). */
export const GiB = 1024 ** 3;
export const million = 1_000_000;

/** USD for one unit. */
export const unitPrice = (price: Price): number => price.usd / price.per;

// ---- billing units -----------------------------------------------------------------------------

/** SQS bills each 64 KiB chunk of a request's payload as one request; every request is at least one. */
export function sqsBilledRequests(payloadBytes: number): number {
  return Math.max(1, Math.ceil(payloadBytes / (64 * KiB)));
}

/** A batch request (up to 10 messages) is one request, chunked by its total payload. */
export function sqsBatchBilledRequests(messageBytes: readonly number[]): number {
  return sqsBilledRequests(messageBytes.reduce((sum, bytes) => sum + bytes, 0));
}

/** A standard write: one unit per started KiB of the item (the larger of before and after). */
export function writeUnits(itemBytes: number): number {
  return Math.max(1, Math.ceil(itemBytes / KiB));
}

/** A read: one unit per started 4 KiB when strongly consistent, half that when eventually consistent. */
export function readUnits(itemBytes: number, consistent: boolean): number {
  const units = Math.max(1, Math.ceil(itemBytes / (4 * KiB)));
  return consistent ? units : units / 2;
}

/** Lambda bills duration rounded up to the millisecond. */
export function billedMs(durationMs: number): number {
  return Math.max(1, Math.ceil(durationMs));
}

export function gbSeconds(billedMilliseconds: number, memoryMb: number): number {
  return (billedMilliseconds / 1000) * (memoryMb / 1024);
}

/** HTTP APIs are metered in 512 KB increments: a request of 600 KB counts as two. */
export function apiGatewayBilledRequests(payloadBytes: number): number {
  return Math.max(1, Math.ceil(payloadBytes / (512 * KiB)));
}

/**
 * Provisioned capacity bought by the hour and used at `utilisation`: the price of one request
 * unit actually consumed (a capacity unit serves one request unit per second).
 */
export function provisionedPricePerUnit(capacityUnitHour: Price, utilisation: number): number {
  if (!(utilisation > 0 && utilisation <= 1)) throw new RangeError(`utilisation must be in (0, 1], got ${utilisation}`);
  return unitPrice(capacityUnitHour) / (3600 * utilisation);
}

/** An item's size as DynamoDB counts it: shared with the adapter that decides what fits in a write unit. */
import { dynamoItemSize } from '../lambdas/adapters/item-size.ts';
export { dynamoItemSize };

/**
 * Where an item's bytes are, as DynamoDB counts them: each attribute's name and value, largest
 * first, and a map attribute's (`output`, `request`) own attributes beside it as `output.body`,
 * each its name and value (the map's 3 bytes and 1 per element are in its total only).
 */
export function itemBreakdown(item: Record<string, unknown>): Array<{ attribute: string; bytes: number }> {
  const size = (name: string, value: unknown) => dynamoItemSize({ [name]: value });
  const parts: Array<{ attribute: string; bytes: number }> = [];
  for (const [name, value] of Object.entries(item)) {
    if (value === undefined) continue;
    parts.push({ attribute: name, bytes: size(name, value) });
    if (value && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Uint8Array) && !(value instanceof Set)) {
      for (const [inner, innerValue] of Object.entries(value as Record<string, unknown>)) {
        if (innerValue !== undefined) parts.push({ attribute: `${name}.${inner}`, bytes: size(inner, innerValue) });
      }
    }
  }
  return parts.sort((a, b) => b.bytes - a.bytes || a.attribute.localeCompare(b.attribute));
}

// ---- usage and cost ----------------------------------------------------------------------------

/** What one job uses, on average (every figure is per job). */
export interface JobUsage {
  dynamodb: Array<{ item: string; calls: number; readUnits: number; writeUnits: number }>;
  sqs: Array<{ item: string; calls: number; billedRequests: number }>;
  lambda: Array<{ fn: string; invocations: number; billedMs: number; memoryMb: number }>;
  apiGateway: { requests: number; billedRequests: number };
  /** Bytes ingested by CloudWatch Logs. */
  logs: { bytes: number };
}

export type DynamoMode = 'onDemand' | 'provisioned';

export interface CostOptions {
  dynamo: DynamoMode;
  /** Provisioned capacity's average utilisation (default 0.7). */
  utilisation?: number;
}

export type Service = 'DynamoDB' | 'SQS' | 'Lambda' | 'API Gateway' | 'CloudWatch Logs';

export interface CostLine {
  service: Service;
  item: string;
  /** Per job, in `unit`. */
  quantity: number;
  unit: string;
  usdPerMillionJobs: number;
}

export interface CostEstimate {
  dynamo: DynamoMode;
  utilisation: number | null;
  lines: CostLine[];
  byService: Record<Service, number>;
  /** USD per million jobs. */
  total: number;
}

/** Prices one job's usage, per million jobs, itemised by service and operation. */
export function estimateCost(usage: JobUsage, table: Prices = prices, options: CostOptions = { dynamo: 'onDemand' }): CostEstimate {
  const utilisation = options.utilisation ?? 0.7;
  const perWrite = options.dynamo === 'onDemand' ? unitPrice(table.dynamodb.writeRequestUnits) : provisionedPricePerUnit(table.dynamodb.writeCapacityUnitHours, utilisation);
  const perRead = options.dynamo === 'onDemand' ? unitPrice(table.dynamodb.readRequestUnits) : provisionedPricePerUnit(table.dynamodb.readCapacityUnitHours, utilisation);
  const lines: CostLine[] = [];
  const add = (service: Service, item: string, quantity: number, unit: string, usdPerJob: number) =>
    lines.push({ service, item, quantity, unit, usdPerMillionJobs: usdPerJob * million });

  for (const op of usage.dynamodb) {
    if (op.writeUnits > 0) add('DynamoDB', op.item, op.writeUnits, 'WRU', op.writeUnits * perWrite);
    if (op.readUnits > 0) add('DynamoDB', op.item, op.readUnits, 'RRU', op.readUnits * perRead);
  }
  for (const op of usage.sqs) add('SQS', op.item, op.billedRequests, 'requests', op.billedRequests * unitPrice(table.sqs.standardRequests));
  for (const fn of usage.lambda) {
    const seconds = gbSeconds(fn.billedMs, fn.memoryMb);
    add('Lambda', `${fn.fn} duration (${fn.memoryMb} MB arm64)`, seconds, 'GB-s', seconds * unitPrice(table.lambda.arm64GbSeconds));
    add('Lambda', `${fn.fn} invocations`, fn.invocations, 'invocations', fn.invocations * unitPrice(table.lambda.requests));
  }
  add('API Gateway', 'HTTP API requests', usage.apiGateway.billedRequests, 'requests', usage.apiGateway.billedRequests * unitPrice(table.apiGateway.httpApiRequests));
  add('CloudWatch Logs', 'ingestion', usage.logs.bytes, 'bytes', (usage.logs.bytes / GiB) * unitPrice(table.cloudwatchLogs.ingestedGb));

  const byService: Record<Service, number> = { DynamoDB: 0, SQS: 0, Lambda: 0, 'API Gateway': 0, 'CloudWatch Logs': 0 };
  for (const line of lines) byService[line.service] += line.usdPerMillionJobs;
  const total = Object.values(byService).reduce((sum, usd) => sum + usd, 0);
  return { dynamo: options.dynamo, utilisation: options.dynamo === 'provisioned' ? utilisation : null, lines, byService, total };
}

/** Storage of a job's items for the retention period, per million jobs (not per request, so apart from the total). */
export function storageCostPerMillion(itemBytes: readonly number[], retentionDays: number, table: Prices = prices): number {
  const bytes = itemBytes.reduce((sum, size) => sum + size + 100, 0);
  const months = retentionDays / 30;
  return (bytes / GiB) * months * unitPrice(table.dynamodb.storageGbMonths) * million;
}
