/**
 * The cost model's arithmetic, pinned with examples worked out by hand from the list prices
 * in bench/prices.json.
 */
import { describe, expect, it } from 'vitest';
import {
  apiGatewayBilledRequests,
  billedMs,
  dynamoItemSize,
  estimateCost,
  gbSeconds,
  itemBreakdown,
  prices,
  provisionedPricePerUnit,
  readUnits,
  sqsBatchBilledRequests,
  sqsBilledRequests,
  storageCostPerMillion,
  writeUnits,
  type JobUsage,
  type Price,
} from '../../bench/cost.ts';

const KiB = 1024;
const none: JobUsage = { dynamodb: [], sqs: [], lambda: [], apiGateway: { requests: 0, billedRequests: 0 }, logs: { bytes: 0 } };
const usage = (parts: Partial<JobUsage>): JobUsage => ({ ...none, ...parts });
const line = (estimate: ReturnType<typeof estimateCost>, item: string, unit: string) => estimate.lines.find((l) => l.item === item && l.unit === unit)?.usdPerMillionJobs;

describe('the price table', () => {
  it('gives every price a date and a source', () => {
    const all: Price[] = [
      ...Object.values(prices.dynamodb),
      ...Object.values(prices.sqs),
      ...Object.values(prices.lambda),
      ...Object.values(prices.apiGateway),
      ...Object.values(prices.cloudwatchLogs),
    ];
    expect(all.length).toBe(10);
    for (const price of all) {
      expect(price.date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(price.source).toMatch(/^https:\/\/aws\.amazon\.com\//);
      expect(price.usd).toBeGreaterThan(0);
    }
  });

  it('holds the us-east-1 list prices the model was checked against', () => {
    expect(prices.dynamodb.writeRequestUnits.usd / prices.dynamodb.writeRequestUnits.per).toBeCloseTo(0.625e-6, 15);
    expect(prices.dynamodb.readRequestUnits.usd / prices.dynamodb.readRequestUnits.per).toBeCloseTo(0.125e-6, 15);
    expect(prices.sqs.standardRequests.usd / prices.sqs.standardRequests.per).toBeCloseTo(0.4e-6, 15);
    expect(prices.lambda.arm64GbSeconds.usd).toBe(0.0000133334);
  });
});

describe('DynamoDB', () => {
  it('bills 5 write and 3 read units a job, on demand, as $3.125 + $0.375 per million jobs', () => {
    const estimate = estimateCost(usage({ dynamodb: [{ item: 'job', calls: 2, readUnits: 3, writeUnits: 5 }] }), prices, { dynamo: 'onDemand' });
    expect(line(estimate, 'job', 'WRU')).toBeCloseTo(3.125, 10);
    expect(line(estimate, 'job', 'RRU')).toBeCloseTo(0.375, 10);
    expect(estimate.byService.DynamoDB).toBeCloseTo(3.5, 10);
    expect(estimate.total).toBeCloseTo(3.5, 10);
  });

  it('bills provisioned capacity used at 70% as the unit-hour price over 2,520 unit-seconds', () => {
    // $0.00065 per WCU-hour buys 3,600 writes an hour, of which 70% are used: 2,520 writes.
    expect(provisionedPricePerUnit(prices.dynamodb.writeCapacityUnitHours, 0.7) * 1e6).toBeCloseTo((0.00065 / 2520) * 1e6, 12);
    expect((0.00065 / 2520) * 1e6).toBeCloseTo(0.257937, 6);
    const estimate = estimateCost(usage({ dynamodb: [{ item: 'job', calls: 2, readUnits: 3, writeUnits: 5 }] }), prices, { dynamo: 'provisioned', utilisation: 0.7 });
    // 5 × $0.257937 + 3 × $0.00013 / 2,520 × 1e6 (= 3 × $0.051587)
    expect(line(estimate, 'job', 'WRU')).toBeCloseTo(1.289683, 5);
    expect(line(estimate, 'job', 'RRU')).toBeCloseTo(0.154762, 5);
    expect(estimate.utilisation).toBe(0.7);
  });

  it('bills full utilisation at exactly the hourly price per 3,600 units', () => {
    expect(provisionedPricePerUnit(prices.dynamodb.readCapacityUnitHours, 1)).toBeCloseTo(0.00013 / 3600, 15);
    expect(() => provisionedPricePerUnit(prices.dynamodb.readCapacityUnitHours, 0)).toThrow(RangeError);
    expect(() => provisionedPricePerUnit(prices.dynamodb.readCapacityUnitHours, 1.5)).toThrow(RangeError);
  });

  it('charges a write a unit per started KiB, and a strongly consistent read a unit per started 4 KiB', () => {
    expect(writeUnits(1)).toBe(1);
    expect(writeUnits(1 * KiB)).toBe(1);
    expect(writeUnits(1 * KiB + 1)).toBe(2);
    expect(writeUnits(1749)).toBe(2);
    expect(readUnits(4 * KiB, true)).toBe(1);
    expect(readUnits(4 * KiB + 1, true)).toBe(2);
    expect(readUnits(8 * KiB, false)).toBe(1);
    expect(readUnits(100, false)).toBe(0.5);
  });

  it('sizes an item by its names and values', () => {
    // "pk" (2) + 36 characters, "n" (1) + 12345 (3 digits pairs: 3 + 1), "ok" (2) + true (1)
    expect(dynamoItemSize({ pk: 'f1e7ce7f-a009-4cd4-9973-d1f31b4b4203', n: 12345, ok: true })).toBe(2 + 36 + 1 + 4 + 2 + 1);
    // a list: 3 + (1 + 1) + (1 + 1); a map: 3 + 1 entry + "a" + "b"
    expect(dynamoItemSize({ l: ['a', 'b'] })).toBe(1 + 3 + 2 + 2);
    expect(dynamoItemSize({ m: { a: 'b' } })).toBe(1 + 3 + 1 + 1 + 1);
  });

  it('tells where an item\'s bytes are: each attribute\'s name and value, a map\'s own attributes beside it', () => {
    const item = { pk: 'f1e7ce7f-a009-4cd4-9973-d1f31b4b4203', status: 'completed', output: { statusCode: 200, body: new Uint8Array(500) } };
    const parts = itemBreakdown(item);
    // output: "output" (6) + a map (3 + 2 elements) + "statusCode" (10) + 200 (3 digits: 3) + "body" (4) + 500 bytes
    expect(parts).toEqual([
      { attribute: 'output', bytes: 6 + 3 + 2 + 10 + 3 + 4 + 500 },
      { attribute: 'output.body', bytes: 4 + 500 },
      { attribute: 'pk', bytes: 2 + 36 },
      { attribute: 'status', bytes: 6 + 9 },
      { attribute: 'output.statusCode', bytes: 10 + 3 },
    ]);
    // The top-level attributes add up to the item's size.
    expect(parts.filter((part) => !part.attribute.includes('.')).reduce((sum, part) => sum + part.bytes, 0)).toBe(dynamoItemSize(item));
  });

  it('prices storage per GB-month, with 100 bytes of overhead per item', () => {
    // Two items of 924 B: 2 × 1,024 B for 30 days = 2,048 B-months, × 1e6 jobs = 2,048e6 B
    const usd = storageCostPerMillion([924, 924], 30);
    expect(usd).toBeCloseTo((2048e6 / 1024 ** 3) * 0.25, 10);
  });
});

describe('SQS', () => {
  it('bills each 64 KiB chunk of a payload as a request: 65 KiB is two', () => {
    expect(sqsBilledRequests(0)).toBe(1);
    expect(sqsBilledRequests(1 * KiB)).toBe(1);
    expect(sqsBilledRequests(64 * KiB)).toBe(1);
    expect(sqsBilledRequests(65 * KiB)).toBe(2);
    expect(sqsBilledRequests(256 * KiB)).toBe(4);
  });

  it('bills a batch of up to ten messages as one request, chunked by its total payload', () => {
    expect(sqsBatchBilledRequests(Array.from({ length: 10 }, () => 100))).toBe(1);
    expect(sqsBatchBilledRequests(Array.from({ length: 10 }, () => 10 * KiB))).toBe(2);
    expect(sqsBatchBilledRequests([])).toBe(1);
  });

  it('prices three requests a job at $1.20 per million jobs', () => {
    const estimate = estimateCost(usage({ sqs: [{ item: 'send', calls: 3, billedRequests: 3 }] }), prices);
    expect(estimate.byService.SQS).toBeCloseTo(1.2, 10);
  });
});

describe('Lambda', () => {
  it('rounds each invocation up to the millisecond', () => {
    expect(billedMs(12.1)).toBe(13);
    expect(billedMs(12)).toBe(12);
    expect(billedMs(0.2)).toBe(1);
  });

  it('bills 100 ms at 512 MB as 0.05 GB-s: $0.667 of duration and $0.20 of requests per million', () => {
    expect(gbSeconds(100, 512)).toBe(0.05);
    expect(gbSeconds(1000, 1024)).toBe(1);
    const estimate = estimateCost(usage({ lambda: [{ fn: 'execute', invocations: 1, billedMs: 100, memoryMb: 512 }] }), prices);
    expect(line(estimate, 'execute duration (512 MB arm64)', 'GB-s')).toBeCloseTo(0.05 * 0.0000133334 * 1e6, 10);
    expect(line(estimate, 'execute duration (512 MB arm64)', 'GB-s')).toBeCloseTo(0.66667, 5);
    expect(line(estimate, 'execute invocations', 'invocations')).toBeCloseTo(0.2, 10);
    expect(estimate.byService.Lambda).toBeCloseTo(0.86667, 5);
  });

  it('spreads one invocation over a batch: a tenth of an invocation a job costs a tenth', () => {
    const estimate = estimateCost(usage({ lambda: [{ fn: 'notify', invocations: 0.1, billedMs: 20, memoryMb: 256 }] }), prices);
    // 20 ms × 0.25 GB = 0.005 GB-s; 0.1 invocation = $0.02 per million
    expect(estimate.byService.Lambda).toBeCloseTo(0.005 * 0.0000133334 * 1e6 + 0.02, 10);
  });
});

describe('API Gateway and logs', () => {
  it('meters HTTP API requests in 512 KB increments', () => {
    expect(apiGatewayBilledRequests(1 * KiB)).toBe(1);
    expect(apiGatewayBilledRequests(512 * KiB)).toBe(1);
    expect(apiGatewayBilledRequests(600 * KiB)).toBe(2);
    const estimate = estimateCost(usage({ apiGateway: { requests: 1, billedRequests: 1 } }), prices);
    expect(estimate.byService['API Gateway']).toBeCloseTo(1, 10);
  });

  it('prices 1 KiB of logs a job at $0.50 per GiB ingested', () => {
    const estimate = estimateCost(usage({ logs: { bytes: 1024 } }), prices);
    expect(estimate.byService['CloudWatch Logs']).toBeCloseTo((1024 * 1e6 * 0.5) / 1024 ** 3, 10);
  });
});

describe('a whole job', () => {
  // A job that succeeds at once with a callback, as the handlers run it: a PutItem at submit, the
  // lease, the answer (with the callback's lease), the callback's outcome; one SendMessage, and a
  // tenth of the event source's receive and delete (batches of ten); api and a tenth of execute.
  const job = (unitsPerWrite: number) =>
    usage({
      dynamodb: [{ item: 'four writes', calls: 4, readUnits: 0, writeUnits: 4 * unitsPerWrite }],
      sqs: [
        { item: 'SendMessage', calls: 1, billedRequests: 1 },
        { item: 'ReceiveMessage', calls: 0.1, billedRequests: 0.1 },
        { item: 'DeleteMessageBatch', calls: 0.1, billedRequests: 0.1 },
      ],
      lambda: [
        { fn: 'api', invocations: 1, billedMs: 13, memoryMb: 512 },
        { fn: 'execute', invocations: 0.1, billedMs: 14, memoryMb: 512 },
      ],
      apiGateway: { requests: 1, billedRequests: 1 },
    });

  it('prices a job whose item stays within one write unit at $4.38 per million, on demand', () => {
    const estimate = estimateCost(job(1), prices, { dynamo: 'onDemand' });
    expect(estimate.byService.DynamoDB).toBeCloseTo(2.5, 10);
    expect(estimate.byService.SQS).toBeCloseTo(0.48, 10);
    // (13 + 14) ms at 0.5 GB = 0.0135 GB-s, and 1.1 invocations.
    expect(estimate.byService.Lambda).toBeCloseTo(0.0135 * 0.0000133334 * 1e6 + 0.22, 10);
    expect(estimate.total).toBeCloseTo(2.5 + 0.48 + 0.18 + 0.22 + 1, 2);
  });

  it('puts the same job over $4.50 once each of its writes takes two units', () => {
    expect(estimateCost(job(2), prices, { dynamo: 'onDemand' }).total).toBeCloseTo(4.38 + 2.5, 2);
    expect(estimateCost(job(2), prices, { dynamo: 'provisioned', utilisation: 0.7 }).byService.DynamoDB).toBeCloseTo(((8 * 0.00065) / 2520) * 1e6, 10);
  });

  // The same job submitted in a batch of 100 (POST /v1/jobs/batch): a hundredth of an API
  // request and of an api invocation (300 ms a batch), a tenth of a SendMessageBatch, and the
  // event source's receive and delete in batches of ten; every write of it a unit (the client
  // index's entry among them, at submit).
  const batched = (writeUnits: number) =>
    usage({
      dynamodb: [{ item: 'writes', calls: writeUnits, readUnits: 0, writeUnits }],
      sqs: [
        { item: 'SendMessageBatch', calls: 0.1, billedRequests: 0.1 },
        { item: 'ReceiveMessage', calls: 0.1, billedRequests: 0.1 },
        { item: 'DeleteMessageBatch', calls: 0.1, billedRequests: 0.1 },
      ],
      lambda: [
        { fn: 'api', invocations: 0.01, billedMs: 3, memoryMb: 512 },
        { fn: 'execute', invocations: 0.1, billedMs: 12, memoryMb: 512 },
      ],
      apiGateway: { requests: 0.01, billedRequests: 0.01 },
    });

  it('prices a job submitted in a batch of 100 at $0.252 per million besides DynamoDB: SQS $0.12, Lambda $0.122, API Gateway $0.01', () => {
    const estimate = estimateCost(batched(0), prices, { dynamo: 'onDemand' });
    expect(estimate.byService.SQS).toBeCloseTo(0.12, 10);
    // api 1.5 and execute 6 thousandths of a GB-s; 0.11 invocations.
    expect(estimate.byService.Lambda).toBeCloseTo(0.0075 * 0.0000133334 * 1e6 + 0.022, 10);
    expect(estimate.byService['API Gateway']).toBeCloseTo(0.01, 10);
    expect(estimate.total).toBeCloseTo(0.252, 3);
  });

  it('meets $3.25 on demand with four write units a batched job, not five; $2.00 provisioned at 70% with five, not seven', () => {
    const onDemand = (units: number) => estimateCost(batched(units), prices, { dynamo: 'onDemand' }).total;
    const provisioned = (units: number) => estimateCost(batched(units), prices, { dynamo: 'provisioned', utilisation: 0.7 }).total;
    expect(onDemand(4)).toBeCloseTo(2.5 + 0.252, 3);
    expect(onDemand(5)).toBeCloseTo(3.125 + 0.252, 3);
    // Five units miss $3.25 even with no Lambda at all: $3.125 + SQS's $0.12 + API Gateway's $0.01.
    expect(estimateCost({ ...batched(5), lambda: [] }, prices, { dynamo: 'onDemand' }).total).toBeGreaterThan(3.25);
    expect(provisioned(5)).toBeCloseTo(5 * 0.257937 + 0.252, 3);
    expect(provisioned(7)).toBeCloseTo(7 * 0.257937 + 0.252, 3);
    expect([onDemand(4) <= 3.25, onDemand(5) <= 3.25, provisioned(5) <= 2, provisioned(7) <= 2]).toEqual([true, false, true, false]);
  });

  it('adds every service up, and only DynamoDB changes with the capacity mode', () => {
    const job = usage({
      dynamodb: [{ item: 'writes', calls: 4, readUnits: 0, writeUnits: 5 }, { item: 'reads', calls: 3, readUnits: 3, writeUnits: 0 }],
      sqs: [{ item: 'send', calls: 2, billedRequests: 2 }],
      lambda: [{ fn: 'api', invocations: 1, billedMs: 20, memoryMb: 512 }],
      apiGateway: { requests: 1, billedRequests: 1 },
      logs: { bytes: 0 },
    });
    const onDemand = estimateCost(job, prices, { dynamo: 'onDemand' });
    const provisioned = estimateCost(job, prices, { dynamo: 'provisioned' });
    const lambda = 0.01 * 0.0000133334 * 1e6 + 0.2;
    expect(onDemand.total).toBeCloseTo(3.125 + 0.375 + 0.8 + lambda + 1, 10);
    expect(provisioned.total - provisioned.byService.DynamoDB).toBeCloseTo(onDemand.total - onDemand.byService.DynamoDB, 10);
    expect(provisioned.byService.DynamoDB).toBeCloseTo(((5 * 0.00065 + 3 * 0.00013) / 2520) * 1e6, 10);
  });
});
