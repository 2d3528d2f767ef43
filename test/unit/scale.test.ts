/**
 * The scale model (lib/scale.ts): what bounds jobs a second on AWS, what the defaults reach, and
 * the context values and quota raises that carry 5,000 jobs a second, with their cost. Figures
 * worked out by hand from AWS's documented quotas, the stack's measured costs and
 * bench/prices.json.
 */
import { App } from 'aws-cdk-lib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { prices } from '../../bench/cost.ts';
import { queues } from '../../lib/definitions.ts';
import {
  batchedWorkload,
  benchWorkload,
  contextCeiling,
  defaultQuotas,
  defaultSettings,
  defaultWorkload,
  hoursPerMonth,
  stackCosts,
  jobProfile,
  planFor,
  scaleCost,
  scaleModel,
  scaleTable,
  settingKeys,
  settingRanges,
  settingsTable,
  type AccountQuotas,
  type BoundId,
  type ScaleModel,
  type ScaleSettings,
  type Workload,
} from '../../lib/scale.ts';
import { contextKeys, maxConcurrencyRange, readSettings, settingDefaults, unreservedMinimum } from '../../lib/settings.ts';

const bound = (model: ScaleModel, id: BoundId): number => {
  const found = model.bounds.find((b) => b.id === id);
  if (!found) throw new Error(`no bound ${id}`);
  return found.jobsPerSecond;
};
const perUnit = (price: { usd: number; per: number }) => price.usd / price.per;

describe('the stack with default settings and default quotas', () => {
  const today = scaleModel();

  it('is bound by the API stage throttle, at 100 jobs a second', () => {
    expect(today.reached).toEqual({ jobsPerSecond: 100, bound: 'apiStage' });
    expect(today.issues).toEqual([]);
  });

  it('would next be bound by execute\'s 20 batches, then by the api reservation: 100 environments serve 10 requests a second each', () => {
    const others = today.bounds.filter((b) => b.id !== 'apiStage').sort((a, b) => a.jobsPerSecond - b.jobsPerSecond);
    expect(others.slice(0, 2).map((b) => b.id)).toEqual(['execute', 'apiFunction']);
    expect(bound(today, 'apiFunction')).toBe(1_000);
  });

  it('works each bound out as the README says', () => {
    // 20 batches × 6 messages ÷ 135 ms (100 ms service + 35 ms of our own), 1.05 deliveries a job.
    expect(bound(today, 'execute')).toBeCloseTo((20 * 6) / 0.135 / 1.05, 6);
    // 40,000 WRU ÷ (1 submit, the request's item with the submitted state + 1 lease, the state's put
    // + 1 answer + 1 callback + 0.05 × 2 retried writes × 2 units + 0.05 kept attempts + 0.2
    // unsettled index writes + 1 listing entry, a single submit's own).
    expect(bound(today, 'dynamoTable')).toBeCloseTo(40_000 / 5.35, 6);
    // 16 shards × 1,000 WCU ÷ (4 index writes × 0.05 retries): the index carries what the sweeper decides on, so each write of an indexed job writes it.
    expect(bound(today, 'unsettledIndex')).toBeCloseTo(80_000, 6);
    // One client: its listing entries share one partition that DynamoDB cannot split, 1,000 WCU ÷ 1 unit of entry a job.
    expect(bound(today, 'clientListing')).toBe(1_000);
    // 120,000 ÷ (1.05 × 0.135 s running + 0.05 × 60 s waiting on a retry).
    expect(bound(today, 'sqsInFlight')).toBeCloseTo(120_000 / (1.05 * 0.135 + 3), 6);
    // 10 × 1,000 invocations a second ÷ (1 api + 1.05 / 6 execute + 0.01 / 6 notify).
    expect(bound(today, 'lambdaRequests')).toBeCloseTo(10_000 / (1 + 1.05 / 6 + 0.01 / 6), 6);
    expect(bound(today, 'apiAccount')).toBe(10_000);
    // The limiter's item for the address, read (eventually consistent, half a unit) by each api
    // environment once a second: 0.1 environments per job a second, 3,000 RCU ÷ 0.05.
    expect(bound(today, 'limiter')).toBeCloseTo(60_000, 6);
  });

  it('holds the defaults, keys and ranges lib/settings.ts deploys with', () => {
    const { throttle, maxConcurrency, apiReservedConcurrency } = readSettings(new App());
    expect({ throttle, maxConcurrency, apiReservedConcurrency }).toEqual(defaultSettings);
    expect(defaultSettings.apiReservedConcurrency).toBe(settingDefaults.apiReservedConcurrency);
    for (const key of Object.keys(settingKeys) as Array<keyof typeof settingKeys>) expect(settingKeys[key]).toBe(contextKeys[key]);
    expect(settingRanges.maxConcurrency).toEqual(maxConcurrencyRange);
    expect(defaultQuotas.lambdaUnreservedMinimum).toBe(unreservedMinimum);
  });

  it('reports a burst larger than the api reservation, as synth warns', () => {
    const model = scaleModel({ settings: { ...defaultSettings, throttle: { rateLimit: 100, burstLimit: 200 } } });
    expect(model.issues.join('\n')).toMatch(/apiReservedConcurrency 100 is below apiThrottleBurst 200/);
    expect(scaleModel({ settings: { ...defaultSettings, apiReservedConcurrency: 0, throttle: { rateLimit: 100, burstLimit: 200 } } }).issues).toEqual([]);
  });

  it('carries nothing with a reservation that leaves Lambda less than 100 unreserved: AWS refuses it', () => {
    const model = scaleModel({ settings: { ...defaultSettings, apiReservedConcurrency: 950 } });
    expect(model.issues.join('\n')).toMatch(/leaves 50 of 1000 unreserved/);
    expect(model.reached).toEqual({ jobsPerSecond: 0, bound: 'lambdaConcurrency' });
    expect(scaleModel({ settings: { ...defaultSettings, apiReservedConcurrency: 900 } }).issues).toEqual([]);
  });
});

describe("a job's units", () => {
  it('writes 5 units for a 1 KiB answer with a callback: the request with the submitted state at submit, a unit each later write, and the single submit\'s listing entry', () => {
    expect(jobProfile(benchWorkload).writeUnits).toMatchObject({ submit: 1, lease: 1, answer: 1, callback: 1, listing: 1, total: 5 });
    expect(jobProfile({ ...benchWorkload, callbackFraction: 0 }).writeUnits.total).toBe(4);
  });

  it('keeps the request in an item of its own, kept to the end for a replay, so no later write carries it', () => {
    // 700 B and 200 B bodies: the answered state (470 B and the stored answer) stays within a unit.
    expect(jobProfile({ ...benchWorkload, bodyBytes: 700 }).writeUnits).toMatchObject({ submit: 1, lease: 1, answer: 1, callback: 1, total: 5 });
    expect(jobProfile({ ...benchWorkload, bodyBytes: 200 }).writeUnits).toMatchObject({ submit: 1, lease: 1, answer: 1, callback: 1, total: 5 });
  });

  it('puts one item per retry for the attempt it keeps, and one listing entry per submit request, at submit only', () => {
    const once = jobProfile({ ...benchWorkload, retriesPerJob: 1 });
    // The kept attempt: 280 B and the answer's 512 B stored, one unit.
    expect(once.writeUnits.keep).toBe(1);
    expect(jobProfile({ ...benchWorkload, retriesPerJob: 3 }).writeUnits.keep).toBe(3);
    expect(jobProfile({ ...benchWorkload, bodyBytes: 8 * 1024 }).writeUnits.keep).toBe(0);
    expect(jobProfile({ ...benchWorkload, bodyBytes: 8 * 1024, retriesPerJob: 1 }).writeUnits.keep).toBe(5);
    // Written once, before the messages: retries and callbacks leave the entry alone.
    expect(once.writeUnits.listing).toBe(1);
    expect(jobProfile({ ...benchWorkload, callbackFraction: 0 }).writeUnits.listing).toBe(1);
  });

  it('puts a request too large to sit beside the job in an item of its own, read at each attempt', () => {
    const large = jobProfile({ ...benchWorkload, bodyBytes: 8 * 1024 });
    // Request 133 + 4,096 B with the job as submitted beside it: 5 units; answer and callback 5 each; the lease's put of the state 1.
    expect(large.writeUnits).toMatchObject({ submit: 5, lease: 1, answer: 5, callback: 5 });
    expect(large.readUnits).toBeCloseTo(0.1 + 2, 10);
  });

  it("prices the bench's job: Lambda $0.49, SQS $0.53, DynamoDB $3.26 (5 write units, 1.1 read units), API Gateway $1", () => {
    const cost = scaleCost(5_000, benchWorkload, { ...stackCosts, limiterReadUnits: 0 }).onDemand;
    expect(cost.byService.Lambda).toBeCloseTo(0.49, 2);
    expect(cost.byService.SQS).toBeCloseTo(0.53, 2);
    expect(cost.byService.DynamoDB).toBeCloseTo(5 * perUnit(prices.dynamodb.writeRequestUnits) * 1e6 + 1.1 * perUnit(prices.dynamodb.readRequestUnits) * 1e6, 9);
    expect(cost.byService['API Gateway']).toBeCloseTo(1, 10);
    expect(cost.total).toBeCloseTo(5.39, 2);
    // The limiter's read of the address's item: half a unit, once a second per api environment.
    expect(scaleCost(5_000, benchWorkload).onDemand.total - cost.total).toBeCloseTo(0.05 * perUnit(prices.dynamodb.readRequestUnits) * 1e6, 9);
  });
});

describe('the plan for 5,000 jobs a second', () => {
  const plan = planFor(5_000);

  it('carries 5,000 jobs a second, and half as much again, on every bound', () => {
    expect(plan.feasible).toBe(true);
    expect(plan.model.issues).toEqual([]);
    for (const b of plan.model.bounds) expect(b.jobsPerSecond, b.name).toBeGreaterThanOrEqual(5_000 * 1.5);
    expect(plan.model.reached).toEqual({ jobsPerSecond: 7_500, bound: 'apiStage' });
  });

  it('sets these context values', () => {
    expect(plan.context).toEqual({ apiThrottleRate: 7_500, apiThrottleBurst: 750, jobsMaxConcurrency: 180, callbacksMaxConcurrency: 2, apiReservedConcurrency: 750 });
    expect(plan.deployCommand).toBe('npx cdk deploy -c apiThrottleRate=7500 -c apiThrottleBurst=750 -c jobsMaxConcurrency=180 -c callbacksMaxConcurrency=2 -c apiReservedConcurrency=750');
  });

  it('carries it from one client address: the limiter reads an address\'s item once a second per api environment, not once a request', () => {
    expect(plan.requirements.filter((r) => r.includes('address'))).toEqual([]);
    expect(plan.model.workload.sourceAddresses).toBe(1);
    expect(bound(plan.model, 'limiter')).toBeCloseTo(60_000, 6);
    // A planned address requirement appears only where the reads would pass what one item serves.
    expect(planFor(5_000, { stack: { ...stackCosts, limiterReadUnits: 5 } }).requirements[0]).toMatch(/^requests from at least 2 client addresses/);
  });

  it('needs the jobs of at least 8 clients: one client submits at most 1,000 jobs a second, whatever is raised', () => {
    // 7,500 jobs/s with the headroom × 1 unit of listing entry a job ÷ 1,000 WCU per partition; 5,000 alone takes 5.
    expect(plan.requirements).toEqual([expect.stringMatching(/^jobs from at least 8 clients, evenly \(5 without the headroom\).*one client submits at most 1,000 jobs a second/)]);
    expect(plan.model.workload.clients).toBe(8);
    expect(bound(plan.model, 'clientListing')).toBe(8_000);
    // Raising every quota leaves one client where it was: a partition's 1,000 write units are fixed.
    const raised: AccountQuotas = { ...defaultQuotas, dynamoOnDemandTable: { readUnits: 400_000, writeUnits: 400_000 }, apiGatewayRps: 100_000, lambdaConcurrency: 100_000 };
    expect(bound(scaleModel({ settings: plan.settings, quotas: raised }), 'clientListing')).toBe(1_000);
    expect(planFor(600).requirements).toEqual([]);
    expect(planFor(700).requirements).toEqual([expect.stringMatching(/^jobs from at least 2 clients/)]);
  });

  it('keeps every setting within what AWS accepts, after the raises', () => {
    const { settings, quotas } = plan.model;
    for (const value of Object.values(settings.maxConcurrency)) {
      expect(value).toBeGreaterThanOrEqual(settingRanges.maxConcurrency.min);
      expect(value).toBeLessThanOrEqual(settingRanges.maxConcurrency.max);
    }
    expect(settings.apiReservedConcurrency).toBeLessThanOrEqual(quotas.lambdaConcurrency - quotas.lambdaUnreservedMinimum);
    const consumers = settings.maxConcurrency.jobs + settings.maxConcurrency.callbacks + queues.jobsDeadLetter.maxConcurrency + queues.callbacksDeadLetter.maxConcurrency + 1;
    expect(consumers).toBeLessThanOrEqual(quotas.lambdaConcurrency - settings.apiReservedConcurrency);
    expect(settings.throttle.rateLimit).toBeLessThanOrEqual(quotas.apiGatewayRps);
    expect(settings.throttle.burstLimit).toBeLessThanOrEqual(quotas.apiGatewayBurst);
    expect(settings.throttle.burstLimit).toBeLessThanOrEqual(settings.apiReservedConcurrency);
  });

  it('deploys through the context keys the stack reads', () => {
    expect(readSettings(new App({ context: plan.context })).throttle).toEqual(plan.settings.throttle);
  });

  it('needs no Lambda or API Gateway raise; the jobs table is raised for the headroom only on demand, and needs no raise provisioned', () => {
    expect(plan.quotaRaises).toEqual([
      { quota: 'DynamoDB table-level write throughput (on demand, WRU/s)', from: 40_000, to: 45_000, why: '40,125 WRU/s', atWanted: false },
    ]);
    // Provisioned at 70%, 5,000 × 5.15 WRU of the table's own (a single submit's listing entry among
    // them, which the `client` index carried before on its own) needs 36,786 WCU: within the table's 40,000.
    expect(plan.provisioned.writeCapacityUnits).toBe(36_786);
    // The unsettled index is provisioned on its own: 5,000 × 0.2 at 70%; the two within the account's 80,000.
    expect(plan.provisioned.indexWriteCapacityUnits).toEqual({ unsettled: 1_429 });
    expect(plan.provisioned.quotaRaises).toEqual([]);
  });

  it('asks for no more than it needs: each setting one step lower carries less than the target', () => {
    const lower = (change: (s: ScaleSettings) => ScaleSettings) => scaleModel({ settings: change(structuredClone(plan.settings)), quotas: plan.model.quotas }).reached.jobsPerSecond;
    expect(lower((s) => ({ ...s, throttle: { ...s.throttle, rateLimit: s.throttle.rateLimit - 100 } }))).toBeLessThan(7_500);
    expect(lower((s) => ({ ...s, maxConcurrency: { ...s.maxConcurrency, jobs: s.maxConcurrency.jobs - 10 } }))).toBeLessThan(7_500);
    expect(lower((s) => ({ ...s, apiReservedConcurrency: s.apiReservedConcurrency - 10 }))).toBeLessThan(7_500);
  });

  it('says how long a cold stack takes to get there: 90 minutes of a new table, unless it is warmed', () => {
    expect(plan.warmThroughput.writeUnitsPerSecond).toBe(41_000);
    expect(plan.warmThroughput.writeUnitsPerSecond).toBeLessThanOrEqual(plan.model.quotas.dynamoOnDemandTable.writeUnits);
    expect(plan.rampNotes.join('\n')).toMatch(/26,750 WRU\/s.*3 doublings, at least 90 min/);
    expect(plan.rampNotes.join('\n')).toMatch(/118 batches in flight.*about 1 min/);
  });

  it('costs $5.67 per million jobs and $74,450 a month on demand, priced from bench/prices.json', () => {
    const wru = perUnit(prices.dynamodb.writeRequestUnits) * 1e6;
    const rru = perUnit(prices.dynamodb.readRequestUnits) * 1e6;
    const sqs = perUnit(prices.sqs.standardRequests) * 1e6;
    const { cost } = plan;
    // 5.15 table units (the kept attempts' 0.05 and the listing entry's 1 among them) + 0.2 unsettled index units; 1.15 read units (the job's two items, at each delivery), and the limiter's 0.05.
    expect(cost.onDemand.byService.DynamoDB).toBeCloseTo(5.35 * wru + 1.2 * rru, 9);
    // SendMessage, receive and delete per 6 of 1.05 deliveries, 0.05 visibility changes, the handed-over callbacks.
    expect(cost.onDemand.byService.SQS).toBeCloseTo((1 + (2 * 1.05) / 6 + 0.05 + 0.01 + (2 * 0.01) / 6) * sqs, 9);
    expect(cost.onDemand.byService['API Gateway']).toBeCloseTo(perUnit(prices.apiGateway.httpApiRequests) * 1e6, 9);
    expect(cost.onDemand.total).toBeCloseTo(5.67, 2);
    expect(cost.perMonth.onDemand).toBeCloseTo((cost.onDemand.total * 5_000 * 3600 * hoursPerMonth) / 1e6, 6);
    expect(Math.round(cost.perMonth.onDemand)).toBe(74_450);
    expect(cost.provisioned.total).toBeLessThan(cost.onDemand.total);
    expect(cost.provisioned.total).toBeCloseTo(3.61, 2);
  });
});

describe('jobs submitted in batches (POST /v1/jobs/batch)', () => {
  it('take one request, one invocation, per batch and one SendMessageBatch per ten jobs; a batch of one is a single submit', () => {
    const batched = jobProfile(batchedWorkload);
    expect(batched.apiRequests).toBeCloseTo(0.01, 12);
    expect(batched.invocations.api).toBeCloseTo(0.01, 12);
    expect(batched.sends).toBeCloseTo(0.1, 12);
    expect(jobProfile({ ...defaultWorkload, jobsPerSubmit: 15 }).sends).toBeCloseTo(2 / 15, 12);
    // The api's time per job is a single submit's: no batch has been measured.
    expect(batched.concurrency.api).toBeCloseTo(0.016, 12);
    // The same writes, a conditional put per job, batched or not; but one listing entry for the 100 (3,859 B, 4 units).
    expect(batched.writeUnits).toEqual({ ...jobProfile().writeUnits, listing: 0.04, total: 4.39 });
    expect(defaultWorkload.jobsPerSubmit).toBe(1);
  });

  it('takes 1 to 100 jobs a batch, and reports a batch whose body is above 5 MiB', () => {
    for (const jobsPerSubmit of [0, 101, 2.5]) expect(() => jobProfile({ ...defaultWorkload, jobsPerSubmit })).toThrow(RangeError);
    const large = scaleModel({ workload: { ...batchedWorkload, bodyBytes: 64 * 1024 } });
    expect(large.issues.join('\n')).toMatch(/a batch of 100 jobs of 65,536 B is about 6,583,600 B, above POST \/v1\/jobs\/batch's 5,242,880: it is refused \(413\)/);
    expect(scaleModel({ workload: batchedWorkload }).issues).toEqual([]);
  });

  it('cost $3.41 per million at 5,000 jobs a second on demand: API Gateway, the api\'s invocations and SendMessage a hundredth or a tenth of the single submits\', and their listing entry a twenty-fifth', () => {
    const single = planFor(5_000).cost;
    const batched = scaleCost(5_000, batchedWorkload);
    const sqs = perUnit(prices.sqs.standardRequests) * 1e6;
    expect(batched.onDemand.byService['API Gateway']).toBeCloseTo(single.onDemand.byService['API Gateway'] / 100, 9);
    expect(single.onDemand.byService.SQS - batched.onDemand.byService.SQS).toBeCloseTo(0.9 * sqs, 9);
    expect(single.onDemand.byService.Lambda - batched.onDemand.byService.Lambda).toBeCloseTo(0.99 * perUnit(prices.lambda.requests) * 1e6, 9);
    // DynamoDB: 0.96 write units a job less (and the failure limiter's reads, by the api's requests).
    expect(single.onDemand.byService.DynamoDB - batched.onDemand.byService.DynamoDB).toBeGreaterThan(0.96 * perUnit(prices.dynamodb.writeRequestUnits) * 1e6);
    expect(batched.onDemand.total).toBeCloseTo(3.41, 2);
    expect(batched.provisioned.total).toBeCloseTo(1.71, 2);
  });

  it('need no stage throttle raise at 5,000 jobs a second, a reservation of 120 for the api\'s time, and the jobs of one client alone: one client submits up to 25,000 batched jobs a second', () => {
    const plan = planFor(5_000, { workload: batchedWorkload });
    expect(plan.feasible).toBe(true);
    // 7,500 jobs/s with the headroom are 75 requests a second; 7,500 × 16 ms keep 120 environments busy.
    expect(plan.context).toEqual({ apiThrottleRate: 100, apiThrottleBurst: 120, jobsMaxConcurrency: 180, callbacksMaxConcurrency: 2, apiReservedConcurrency: 120 });
    expect(plan.requirements).toEqual([]);
    expect(bound(plan.model, 'clientListing')).toBe(25_000);
    for (const b of plan.model.bounds) expect(b.jobsPerSecond, b.name).toBeGreaterThanOrEqual(7_500);
  });
});

describe('what context values alone cannot do', () => {
  it('reports a 1 s target at 5,000 jobs a second: execute would need more than 1,000 batches in flight', () => {
    const slow = planFor(5_000, { workload: { ...defaultWorkload, serviceMs: 1_000 } });
    expect(slow.feasible).toBe(false);
    expect(slow.model.issues.join('\n')).toMatch(/jobsMaxConcurrency would need 1,359, above Lambda's 1000/);
    expect(slow.settings.maxConcurrency.jobs).toBe(1_000);
  });

  it('stops at about 28,000 jobs a second for a 100 ms target: past it execute needs more than 1,000 batches', () => {
    const ceiling = contextCeiling();
    // 1,000 batches × 6 messages ÷ 135 ms ÷ 1.05 deliveries ÷ 1.5 headroom.
    expect(ceiling).toBeCloseTo((1_000 * 6) / 0.135 / 1.05 / 1.5, 6);
    expect(planFor(Math.floor(ceiling)).feasible).toBe(true);
    expect(planFor(Math.floor(ceiling)).settings.maxConcurrency.jobs).toBe(1_000);
    expect(planFor(Math.ceil(ceiling) + 1).feasible).toBe(false);
  });

  it('raises Lambda and API Gateway quotas when the rate needs them', () => {
    const plan = planFor(20_000);
    expect(plan.feasible).toBe(true);
    const raised = new Map(plan.quotaRaises.map((r) => [r.quota, r]));
    expect(raised.get('API Gateway throttle per account, per region (requests/s)')).toMatchObject({ to: 30_000, atWanted: true });
    expect(raised.get('Lambda concurrent executions')?.to).toBeGreaterThan(defaultQuotas.lambdaConcurrency);
    for (const b of plan.model.bounds) expect(b.jobsPerSecond, b.name).toBeGreaterThanOrEqual(20_000);
  });
});

describe('the model is monotonic', () => {
  const settings = fc.record({
    throttle: fc.record({ rateLimit: fc.integer({ min: 1, max: 20_000 }), burstLimit: fc.integer({ min: 1, max: 5_000 }) }),
    maxConcurrency: fc.record({ jobs: fc.integer({ min: 2, max: 1_000 }), callbacks: fc.integer({ min: 2, max: 1_000 }) }),
    apiReservedConcurrency: fc.integer({ min: 0, max: 2_000 }),
  });
  const quotas = fc.record({ lambdaConcurrency: fc.integer({ min: 100, max: 20_000 }), apiGatewayRps: fc.integer({ min: 1_000, max: 50_000 }), tableWrites: fc.integer({ min: 1_000, max: 200_000 }), inFlight: fc.integer({ min: 10_000, max: 500_000 }) });
  const toQuotas = (q: { lambdaConcurrency: number; apiGatewayRps: number; tableWrites: number; inFlight: number }): AccountQuotas => ({
    ...defaultQuotas,
    lambdaConcurrency: q.lambdaConcurrency,
    apiGatewayRps: q.apiGatewayRps,
    dynamoOnDemandTable: { ...defaultQuotas.dynamoOnDemandTable, writeUnits: q.tableWrites },
    sqsInFlight: q.inFlight,
  });
  const reached = (s: ScaleSettings, q: AccountQuotas = defaultQuotas, w: Workload = defaultWorkload) => scaleModel({ settings: s, quotas: q, workload: w }).reached.jobsPerSecond;
  const more = fc.integer({ min: 1, max: 1_000 });

  it('never carries less when a throttle or an event source maximum concurrency is raised', () => {
    fc.assert(
      fc.property(settings, quotas, more, (s, q, extra) => {
        const base = reached(s, toQuotas(q));
        expect(reached({ ...s, throttle: { ...s.throttle, rateLimit: s.throttle.rateLimit + extra } }, toQuotas(q))).toBeGreaterThanOrEqual(base);
        expect(reached({ ...s, maxConcurrency: { ...s.maxConcurrency, jobs: Math.min(1_000, s.maxConcurrency.jobs + extra) } }, toQuotas(q))).toBeGreaterThanOrEqual(base);
        expect(reached({ ...s, maxConcurrency: { ...s.maxConcurrency, callbacks: Math.min(1_000, s.maxConcurrency.callbacks + extra) } }, toQuotas(q))).toBeGreaterThanOrEqual(base);
      }),
    );
  });

  it('never carries less when a quota is raised', () => {
    fc.assert(
      fc.property(settings, quotas, more, (s, q, extra) => {
        const base = reached(s, toQuotas(q));
        expect(reached(s, toQuotas({ ...q, lambdaConcurrency: q.lambdaConcurrency + extra }))).toBeGreaterThanOrEqual(base);
        expect(reached(s, toQuotas({ ...q, apiGatewayRps: q.apiGatewayRps + extra }))).toBeGreaterThanOrEqual(base);
        expect(reached(s, toQuotas({ ...q, tableWrites: q.tableWrites + extra }))).toBeGreaterThanOrEqual(base);
        expect(reached(s, toQuotas({ ...q, inFlight: q.inFlight + extra }))).toBeGreaterThanOrEqual(base);
      }),
    );
  });

  it('never carries more for a slower target or more retries', () => {
    fc.assert(
      fc.property(settings, fc.integer({ min: 1, max: 60_000 }), fc.double({ min: 0, max: 3, noNaN: true }), more, (s, serviceMs, retries, extra) => {
        const w: Workload = { ...defaultWorkload, serviceMs, retriesPerJob: retries };
        const base = reached(s, defaultQuotas, w);
        expect(reached(s, defaultQuotas, { ...w, serviceMs: serviceMs + extra })).toBeLessThanOrEqual(base);
        expect(reached(s, defaultQuotas, { ...w, retriesPerJob: retries + extra / 1_000 })).toBeLessThanOrEqual(base);
      }),
    );
  });

  it('never carries less for larger batches', () => {
    fc.assert(
      fc.property(settings, fc.integer({ min: 1, max: 99 }), fc.integer({ min: 1, max: 99 }), (s, size, extra) => {
        const larger = Math.min(100, size + extra);
        const w: Workload = { ...defaultWorkload, clients: 100, jobsPerSubmit: size };
        // A larger batch's listing entry may cross a write unit (23 ids are 1,010 B, 24 are
        // 1,047 B: two units for 24 jobs where one served 23): there a job costs a little more.
        fc.pre(jobProfile({ ...w, jobsPerSubmit: larger }).listingWrites <= jobProfile(w).listingWrites);
        expect(reached(s, defaultQuotas, { ...w, jobsPerSubmit: larger })).toBeGreaterThanOrEqual(reached(s, defaultQuotas, w));
        // Not so the cost: 11 jobs take two SendMessageBatch requests where 10 take one.
      }),
    );
  });

  it('gives the api more with a larger reservation, at the cost of the pool the queue consumers share', () => {
    fc.assert(
      fc.property(settings, more, (given, extra) => {
        // From none to one the api leaves the shared pool: another trade, covered by the table.
        const s = { ...given, apiReservedConcurrency: Math.max(1, given.apiReservedConcurrency) };
        const m = scaleModel({ settings: s });
        const raised = scaleModel({ settings: { ...s, apiReservedConcurrency: s.apiReservedConcurrency + extra } });
        expect(bound(raised, 'apiFunction')).toBeGreaterThanOrEqual(bound(m, 'apiFunction'));
        expect(bound(raised, 'lambdaConcurrency')).toBeLessThanOrEqual(bound(m, 'lambdaConcurrency'));
      }),
    );
    // So a reservation is no free lunch: 900 of 1,000 leaves execute 95 environments.
    const open: ScaleSettings = { throttle: { rateLimit: 10_000, burstLimit: 500 }, maxConcurrency: { jobs: 1_000, callbacks: 2 }, apiReservedConcurrency: 500 };
    const manyAddresses: Workload = { ...defaultWorkload, sourceAddresses: 100, clients: 100 };
    expect(reached({ ...open, apiReservedConcurrency: 900 }, defaultQuotas, manyAddresses)).toBeLessThan(reached(open, defaultQuotas, manyAddresses));
  });

  it('plans more of every setting for a higher rate, never less than the defaults, and carries what it plans', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: Math.floor(contextCeiling()) }), fc.integer({ min: 1, max: 10_000 }), (wanted, extra) => {
        const a = planFor(wanted);
        const b = planFor(Math.min(wanted + extra, Math.floor(contextCeiling())));
        for (const [low, high] of [
          [a.settings.throttle.rateLimit, b.settings.throttle.rateLimit],
          [a.settings.throttle.burstLimit, b.settings.throttle.burstLimit],
          [a.settings.maxConcurrency.jobs, b.settings.maxConcurrency.jobs],
          [a.settings.maxConcurrency.callbacks, b.settings.maxConcurrency.callbacks],
          [a.settings.apiReservedConcurrency, b.settings.apiReservedConcurrency],
        ] as const) {
          expect(high).toBeGreaterThanOrEqual(low);
        }
        expect(a.settings.throttle.rateLimit).toBeGreaterThanOrEqual(defaultSettings.throttle.rateLimit);
        expect(a.settings.maxConcurrency.jobs).toBeGreaterThanOrEqual(defaultSettings.maxConcurrency.jobs);
        expect(a.settings.apiReservedConcurrency).toBeGreaterThanOrEqual(defaultSettings.apiReservedConcurrency);
        expect(a.feasible).toBe(true);
        expect(a.model.reached.jobsPerSecond).toBeGreaterThanOrEqual(wanted * 1.5);
      }),
      { numRuns: 200 },
    );
  });
});

describe("the README's tables", () => {
  const today = scaleModel();
  const plan = planFor(5_000);
  const table = scaleTable([
    { title: 'defaults', model: today },
    { title: '5,000 jobs/s plan', model: plan.model },
  ]);
  const rows = table.split('\n');

  it('has a row for each bound and one for what is reached, a column for each model', () => {
    expect(rows).toHaveLength(2 + today.bounds.length + 1);
    expect(rows[0]).toBe('| bound | raised by | jobs/s, defaults | jobs/s, 5,000 jobs/s plan |');
    for (const row of rows) expect(row.split(' | ')).toHaveLength(4);
    expect(rows.at(-1)).toBe('| **reached** (the least) |  | **100** | **7,500** |');
  });

  it("prints each model's figures, the binding bound in bold", () => {
    expect(table).toContain('| API stage throttle | `apiThrottleRate` | **100** | **7,500** |');
    expect(table).toContain('| execute, jobs event source | `jobsMaxConcurrency` | 846 | 7,619 |');
    expect(table).toContain('| DynamoDB jobs table, on demand | quota: DynamoDB table-level write throughput | 7,476 | 8,411 |');
    expect(table).toContain('| DynamoDB failure limiter, an item per address | fixed (per partition): more client addresses | 60,000 | 60,000 |');
    expect(table).toContain("| DynamoDB one client's submits, its listing entries | fixed (per partition): more clients | 1,000 | 8,000 |");
  });

  it('lists the context values side by side', () => {
    expect(settingsTable([{ title: 'default', settings: defaultSettings }, { title: '5,000 jobs/s', settings: plan.settings }])).toContain('| `apiReservedConcurrency` | 100 | 750 |');
  });
});
