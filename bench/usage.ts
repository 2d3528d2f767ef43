/**
 * From what the meters saw during a phase to what one job uses: per-job SDK calls and capacity
 * (the call meter's middleware), Lambda invocations and billed time (the local stack's
 * invocation channel), API Gateway requests and log bytes. Background work — the sweeper's
 * schedule and the pollers' empty receives — is a cost per minute on AWS, not per job, so it is
 * set apart (and shown) rather than spread over the jobs.
 */
import { functions, lambdaSystemLogLevel, tables, type FunctionName } from '../lib/definitions.ts';
import { apiGatewayBilledRequests, prices as defaultPrices, type JobUsage, type Prices } from './cost.ts';
import { diffSnapshots, isReadOperation, type MeterSnapshot, type OperationStats } from './meter.ts';
import type { Invocations, Snapshot } from './protocol.ts';

export interface PhaseDelta {
  meter: MeterSnapshot;
  invocations: Invocations;
  logBytes: number;
  errors: number;
}

export function diffPhase(before: Snapshot, after: Snapshot): PhaseDelta {
  const invocations: Invocations = {};
  for (const [fn, stats] of Object.entries(after.invocations)) {
    const earlier = before.invocations[fn];
    const count = stats.invocations - (earlier?.invocations ?? 0);
    if (count > 0) {
      invocations[fn] = {
        invocations: count,
        totalMs: stats.totalMs - (earlier?.totalMs ?? 0),
        billedMs: stats.billedMs - (earlier?.billedMs ?? 0),
        maxMs: stats.maxMs,
      };
    }
  }
  return { meter: diffSnapshots(before.meter, after.meter), invocations, logBytes: after.logBytes - before.logBytes, errors: after.errors - before.errors };
}

export interface OperationPerJob {
  item: string;
  service: 'DynamoDB' | 'SQS';
  calls: number;
  units: number;
  unit: 'RRU' | 'WRU' | 'requests';
  /** Average units per call (DynamoDB: item size in KB, roughly). */
  unitsPerCall: number;
  /** Failed calls per job, and in the phase by error name. */
  failures: number;
  errors: Record<string, number>;
  /** Average bytes of a call's request and response bodies (every attempt's). */
  requestBytesPerCall: number;
  responseBytesPerCall: number;
}

export interface Background {
  sweeperInvocations: number;
  /** Calls of background work, in total over the phase. */
  calls: Array<{ item: string; calls: number; units: number }>;
}

export interface PhaseUsage {
  jobs: number;
  usage: JobUsage;
  operations: OperationPerJob[];
  background: Background;
  lambda: Array<{ fn: string; invocations: number; avgMs: number; maxMs: number; billedMsPerJob: number }>;
}

/** Failures and sizes of an operation's calls: the index writes the meter estimates have none. */
const callFacts = (stats: OperationStats, jobs: number) => ({
  failures: stats.failures / jobs,
  errors: { ...stats.errors },
  requestBytesPerCall: stats.operation === 'index write' ? 0 : stats.requestBytes / stats.calls,
  responseBytesPerCall: stats.operation === 'index write' ? 0 : stats.responseBytes / stats.calls,
});

const label = (stats: OperationStats) => `${stats.operation} ${stats.detail}${stats.caller === 'handlers' ? '' : ` [${stats.caller}]`}`;

export function usagePerJob(delta: PhaseDelta, jobs: number, requestBytes: number, table: Prices = defaultPrices): PhaseUsage {
  if (jobs <= 0) throw new Error('a phase without jobs has no per-job usage');
  const background: Background = { sweeperInvocations: delta.invocations['sweeper']?.invocations ?? 0, calls: [] };
  const entries = Object.values(delta.meter).map((stats) => ({ ...stats }));

  // The sweeper's walks of the unsettled index (and BatchGetItems, which only the sweeper ever
  // made): the only calls of either kind the handlers make, and a cost per minute, not per job;
  // so are the writes of its own item (its lease, where its run stopped).
  const sweeperItem = ` sk=${tables.jobs.sweeperState.sk}`;
  for (const stats of entries) {
    const sweeperQuery = stats.operation === 'Query' && stats.detail.includes(' index ');
    const sweeperState = stats.detail.includes(`${sweeperItem} `) || stats.detail.endsWith(sweeperItem);
    if (stats.service === 'DynamoDB' && (sweeperQuery || sweeperState || stats.operation === 'BatchGetItem') && stats.calls > 0) {
      background.calls.push({ item: `${label(stats)} (sweeper)`, calls: stats.calls, units: stats.capacityUnits + stats.estimatedUnits });
      stats.calls = 0;
    }
  }
  for (const stats of entries) {
    if (stats.service === 'SQS' && stats.operation === 'ReceiveMessage' && stats.returned === 0 && stats.calls > 0) {
      background.calls.push({ item: `${label(stats)} (idle polling)`, calls: stats.calls, units: stats.billedRequests });
      stats.calls = 0;
    }
  }

  const operations: OperationPerJob[] = [];
  const usage: JobUsage = { dynamodb: [], sqs: [], lambda: [], apiGateway: { requests: 0, billedRequests: 0 }, logs: { bytes: 0 } };
  for (const stats of entries.filter((entry) => entry.calls > 0)) {
    const item = label(stats);
    if (stats.service === 'DynamoDB') {
      const units = (stats.capacityUnits + stats.estimatedUnits) / jobs;
      const read = isReadOperation(stats.operation);
      usage.dynamodb.push({ item, calls: stats.calls / jobs, readUnits: read ? units : 0, writeUnits: read ? 0 : units });
      operations.push({ item, service: 'DynamoDB', calls: stats.calls / jobs, units, unit: read ? 'RRU' : 'WRU', unitsPerCall: (stats.capacityUnits + stats.estimatedUnits) / stats.calls, ...callFacts(stats, jobs) });
    } else {
      usage.sqs.push({ item, calls: stats.calls / jobs, billedRequests: stats.billedRequests / jobs });
      operations.push({ item, service: 'SQS', calls: stats.calls / jobs, units: stats.billedRequests / jobs, unit: 'requests', unitsPerCall: stats.billedRequests / stats.calls, ...callFacts(stats, jobs) });
    }
  }
  operations.sort((a, b) => a.service.localeCompare(b.service) || b.units - a.units);

  const lambda: PhaseUsage['lambda'] = [];
  let invocationsTotal = 0;
  for (const [fn, stats] of Object.entries(delta.invocations)) {
    if (fn === 'sweeper') continue;
    const memoryMb = functions[fn as FunctionName]?.memoryMb ?? 512;
    usage.lambda.push({ fn, invocations: stats.invocations / jobs, billedMs: stats.billedMs / jobs, memoryMb });
    lambda.push({ fn, invocations: stats.invocations / jobs, avgMs: stats.totalMs / stats.invocations, maxMs: stats.maxMs, billedMsPerJob: stats.billedMs / jobs });
    invocationsTotal += stats.invocations;
  }
  const apiRequests = delta.invocations['api']?.invocations ?? 0;
  usage.apiGateway = { requests: apiRequests / jobs, billedRequests: (apiRequests * apiGatewayBilledRequests(requestBytes)) / jobs };
  // Lambda's START/END/REPORT lines are INFO: not written when the functions log at WARN.
  const platformBytes = lambdaSystemLogLevel === 'WARN' ? 0 : table.logVolume.lambdaPlatformBytesPerInvocation;
  usage.logs.bytes = (delta.logBytes + invocationsTotal * platformBytes + apiRequests * table.logVolume.apiAccessLogBytesPerRequest) / jobs;
  return { jobs, usage, operations, background, lambda };
}

/**
 * The best estimate of AWS at volume: the calls, units and invocations per job of a loaded phase
 * (its batching), with each function's billed time per invocation from an uncontended phase — on
 * Lambda every invocation has its own CPU, while the local stack shares one event loop, which
 * stretches handler durations under load. `uncontendedBy` names, for a function, another
 * uncontended phase to take its time from: a batched load's api invocation takes a batch, not
 * the one job of light load's (bench/run.ts's batch probe).
 */
export function atScale(loaded: PhaseUsage, uncontended: PhaseUsage, uncontendedBy: Readonly<Record<string, PhaseUsage>> = {}): JobUsage {
  const perInvocation = new Map(uncontended.usage.lambda.map((fn) => [fn.fn, fn.invocations > 0 ? fn.billedMs / fn.invocations : undefined]));
  for (const [name, phase] of Object.entries(uncontendedBy)) {
    const fn = phase.usage.lambda.find((each) => each.fn === name);
    perInvocation.set(name, fn && fn.invocations > 0 ? fn.billedMs / fn.invocations : undefined);
  }
  return {
    ...loaded.usage,
    lambda: loaded.usage.lambda.map((fn) => {
      const ms = perInvocation.get(fn.fn);
      return ms === undefined ? fn : { ...fn, billedMs: fn.invocations * ms };
    }),
  };
}
