/**
 * The benchmark's instruments: the call meter (what a call costs), the per-job usage it leads to
 * (background work set apart), percentiles and the CPU-profile reading.
 */
import { describe, expect, it } from 'vitest';
import type { AwsService, CallObserver } from '../../lambdas/adapters/aws/client.ts';
import { lambdaSystemLogLevel } from '../../lib/definitions.ts';
import { CallMeter, describeUpdate, diffSnapshots } from '../../bench/meter.ts';
import { summarizeProfile, type CpuProfile } from '../../bench/profile.ts';
import type { Snapshot } from '../../bench/protocol.ts';
import { percentile, summarize } from '../../bench/stats.ts';
import { atScale, diffPhase, usagePerJob, type PhaseUsage } from '../../bench/usage.ts';

type Input = Record<string, unknown>;

/**
 * A client that calls its observers as AwsClient does (on a copy of the input, before sending;
 * then after the answer, or once the call has failed), in front of a fake service: `answer`
 * sees the input as it would be sent.
 */
function fakeClient(service: AwsService) {
  const observers: CallObserver[] = [];
  const client = { service, observe: (observer: CallObserver) => void observers.push(observer) };
  const call = async (operation: string, input: Input, answer: (sent: Input) => Input | Error): Promise<Input> => {
    const sent = { ...input };
    for (const observer of observers) observer.before?.(operation, sent);
    const sizes = { requestBytes: JSON.stringify(sent).length, responseBytes: 0 };
    const output = answer(sent);
    if (output instanceof Error) {
      for (const observer of observers) observer.failed?.(operation, sent, output, sizes);
      throw output;
    }
    for (const observer of observers) observer.after?.(operation, sent, output, sizes);
    return output;
  };
  return { client, call, observers };
}

const jobsTable = 'waas-jobs';
/** A job's key, as it goes on the wire. */
const jobKey = { pk: { S: 'j1' }, sk: { S: 'job' } };

describe('the call meter', () => {
  it('asks DynamoDB for its consumed capacity and adds it up per operation and item', async () => {
    const meter = new CallMeter();
    const { client, call } = fakeClient('dynamodb');
    meter.attach(client);
    const seen: Input[] = [];
    const answer = (input: Input) => {
      seen.push(input);
      return { ConsumedCapacity: { TableName: jobsTable, CapacityUnits: 2 } };
    };
    const update = {
      TableName: jobsTable,
      Key: jobKey,
      UpdateExpression: 'SET #result = :set_result, #s = :set_s REMOVE #l',
      ExpressionAttributeNames: { '#result': 'result', '#s': 's', '#l': 'l' },
    };
    await call('UpdateItem', update, answer);
    await call('UpdateItem', update, answer);
    expect(seen[0]?.['ReturnConsumedCapacity']).toBe('TOTAL');
    expect(update).not.toHaveProperty('ReturnConsumedCapacity');
    const stats = meter.snapshot()['DynamoDB UpdateItem waas-jobs sk=job set result,s −l'];
    expect(stats).toMatchObject({ calls: 2, capacityUnits: 4, failures: 0 });
  });

  it('leaves a capacity request the caller made as it is, and asks none of SQS', async () => {
    const meter = new CallMeter();
    const dynamodb = fakeClient('dynamodb');
    const sqs = fakeClient('sqs');
    meter.attach(dynamodb.client);
    meter.attach(sqs.client);
    const seen: Input[] = [];
    await dynamodb.call('GetItem', { TableName: jobsTable, Key: jobKey, ReturnConsumedCapacity: 'INDEXES' }, (input) => (seen.push(input), {}));
    await sqs.call('SendMessage', { QueueUrl: 'http://127.0.0.1:1/000000000000/waas-jobs', MessageBody: '{}' }, (input) => (seen.push(input), {}));
    expect(seen[0]?.['ReturnConsumedCapacity']).toBe('INDEXES');
    expect(seen[1]).not.toHaveProperty('ReturnConsumedCapacity');
  });

  it('counts a failed conditional write as one write unit, and the caller still gets the error', async () => {
    const meter = new CallMeter();
    const { client, call } = fakeClient('dynamodb');
    meter.attach(client);
    const failed = Object.assign(new Error('The conditional request failed'), { name: 'ConditionalCheckFailedException' });
    await expect(call('UpdateItem', { TableName: jobsTable, Key: jobKey, UpdateExpression: 'SET a = :a' }, () => failed)).rejects.toThrow('conditional');
    expect(meter.snapshot()).toEqual({
      'DynamoDB UpdateItem waas-jobs sk=job set a': expect.objectContaining({ calls: 1, failures: 1, capacityUnits: 0, estimatedUnits: 1 }),
    });
  });

  it('labels items by their sort key as it goes on the wire', async () => {
    const meter = new CallMeter();
    const { client, call } = fakeClient('dynamodb');
    meter.attach(client);
    const ok = () => ({ ConsumedCapacity: { TableName: jobsTable, CapacityUnits: 1 } });
    await call('GetItem', { TableName: jobsTable, Key: { pk: { S: 'j1' }, sk: { S: 'request' } }, ConsistentRead: true }, ok);
    await call('PutItem', { TableName: jobsTable, Item: { ...jobKey, s: { S: 'accepted' }, spec: { B: 'AAEC' } } }, ok);
    await call('DeleteItem', { TableName: 'waas-clients', Key: { clientId: { S: 'c1' } } }, ok);
    expect(Object.keys(meter.snapshot())).toEqual([
      'DynamoDB GetItem waas-jobs sk=request',
      'DynamoDB PutItem waas-jobs sk=job',
      'DynamoDB DeleteItem waas-clients',
    ]);
  });

  it('bills a write to the sparse index when the index key is put or removed, not otherwise', async () => {
    const meter = new CallMeter({ indexKeys: { [jobsTable]: { unsettled: 'sweep' } } });
    const { client, call } = fakeClient('dynamodb');
    meter.attach(client);
    const ok = () => ({ ConsumedCapacity: [{ TableName: jobsTable, CapacityUnits: 3 }] });
    await call(
      'BatchWriteItem',
      {
        RequestItems: {
          [jobsTable]: [
            { PutRequest: { Item: { pk: { S: 'j1' }, sk: { S: 'request' } } } },
            { PutRequest: { Item: { ...jobKey, sweep: { S: 'f' } } } },
          ],
        },
      },
      ok,
    );
    await call('UpdateItem', { TableName: jobsTable, Key: jobKey, UpdateExpression: 'SET #a = :a', ExpressionAttributeNames: { '#a': 'a' } }, ok);
    await call('UpdateItem', { TableName: jobsTable, Key: jobKey, UpdateExpression: 'SET #n = :n REMOVE #sweep', ExpressionAttributeNames: { '#n': 'n', '#sweep': 'sweep' } }, ok);
    const snapshot = meter.snapshot();
    expect(snapshot['DynamoDB BatchWriteItem waas-jobs put request+put job']?.capacityUnits).toBe(3);
    expect(snapshot['DynamoDB index write waas-jobs index unsettled (BatchWriteItem)']).toMatchObject({ calls: 1, capacityUnits: 1 });
    expect(snapshot['DynamoDB index write waas-jobs index unsettled (UpdateItem)']).toMatchObject({ calls: 1, capacityUnits: 1 });
  });

  it('bills no index write for removing the index key from an item that never had it, and one for deleting an item that had it', async () => {
    const meter = new CallMeter({ indexKeys: { [jobsTable]: { unsettled: 'sweep' } } });
    const { client, call } = fakeClient('dynamodb');
    meter.attach(client);
    const ok = () => ({ ConsumedCapacity: { TableName: jobsTable, CapacityUnits: 1 } });
    const other = { pk: { S: 'j2' }, sk: { S: 'job' } };
    const settle = (Key: Input) => ({ TableName: jobsTable, Key, UpdateExpression: 'SET #s = :s REMOVE #sweep', ExpressionAttributeNames: { '#s': 's', '#sweep': 'sweep' } });
    // j1 goes straight to its end; j2 waits on a retry in the index, then is removed.
    await call('PutItem', { TableName: jobsTable, Item: { ...jobKey, s: { S: 'accepted' } } }, ok);
    await call('UpdateItem', settle(jobKey), ok);
    await call('PutItem', { TableName: jobsTable, Item: { ...other, s: { S: 'accepted' } } }, ok);
    await call('UpdateItem', { TableName: jobsTable, Key: other, UpdateExpression: 'SET #sweep = :w', ExpressionAttributeNames: { '#sweep': 'sweep' } }, ok);
    await call('BatchWriteItem', { RequestItems: { [jobsTable]: [{ DeleteRequest: { Key: other } }] } }, ok);
    const snapshot = meter.snapshot();
    expect(snapshot['DynamoDB index write waas-jobs index unsettled (UpdateItem)']).toMatchObject({ calls: 1, capacityUnits: 1 });
    expect(snapshot['DynamoDB index write waas-jobs index unsettled (BatchWriteItem)']).toMatchObject({ calls: 1, capacityUnits: 1 });
    expect(snapshot['DynamoDB index write waas-jobs index unsettled (PutItem)']).toBeUndefined();
  });

  it('bills removing the index key from an item it has not seen written (from before the meter started)', async () => {
    const meter = new CallMeter({ indexKeys: { [jobsTable]: { unsettled: 'sweep' } } });
    const { client, call } = fakeClient('dynamodb');
    meter.attach(client);
    await call('UpdateItem', { TableName: jobsTable, Key: jobKey, UpdateExpression: 'REMOVE #sweep', ExpressionAttributeNames: { '#sweep': 'sweep' } }, () => ({}));
    expect(meter.snapshot()['DynamoDB index write waas-jobs index unsettled (UpdateItem)']).toMatchObject({ calls: 1 });
  });

  it('bills SQS by 64 KiB chunk and tells empty receives apart', async () => {
    const meter = new CallMeter();
    const { client, call } = fakeClient('sqs');
    meter.attach(client, 'event source');
    const url = 'http://127.0.0.1:1/000000000000/waas-jobs';
    await call('SendMessage', { QueueUrl: url, MessageBody: 'x'.repeat(65 * 1024) }, () => ({}));
    await call('ReceiveMessage', { QueueUrl: url }, () => ({ Messages: [{ Body: 'a' }, { Body: 'b' }] }));
    await call('ReceiveMessage', { QueueUrl: url }, () => ({}));
    const snapshot = meter.snapshot();
    expect(snapshot['SQS SendMessage waas-jobs [event source]']).toMatchObject({ calls: 1, billedRequests: 2, messages: 1 });
    expect(snapshot['SQS ReceiveMessage waas-jobs [event source]']).toMatchObject({ calls: 1, billedRequests: 1, returned: 2 });
    expect(snapshot['SQS ReceiveMessage waas-jobs (empty) [event source]']).toMatchObject({ calls: 1 });
  });

  it('counts a failed SQS call as a call and a failure', async () => {
    const meter = new CallMeter();
    const { client, call } = fakeClient('sqs');
    meter.attach(client);
    const failure = Object.assign(new Error('no such queue'), { name: 'QueueDoesNotExist' });
    await expect(call('SendMessage', { QueueUrl: 'http://127.0.0.1:1/000000000000/gone', MessageBody: '{}' }, () => failure)).rejects.toBe(failure);
    expect(meter.snapshot()['SQS SendMessage gone']).toMatchObject({ calls: 1, failures: 1 });
  });

  it('watches a client once, however often it is attached', async () => {
    const meter = new CallMeter();
    const { client, call, observers } = fakeClient('dynamodb');
    meter.attach(client);
    meter.attach(client, 'other');
    expect(observers).toHaveLength(1);
    expect(meter.has(client)).toBe(true);
    await call('GetItem', { TableName: jobsTable, Key: jobKey }, () => ({ ConsumedCapacity: { CapacityUnits: 0.5 } }));
    expect(meter.snapshot()['DynamoDB GetItem waas-jobs sk=job']).toMatchObject({ calls: 1, capacityUnits: 0.5, caller: 'handlers' });
  });

  it('describes an update by the attributes it sets and removes', () => {
    expect(describeUpdate('SET #a = :a, #b = :b REMOVE #c', { '#a': 'status', '#b': 'attempts', '#c': 'leaseUntil' })).toBe('set attempts,status −leaseUntil');
    expect(describeUpdate('REMOVE #x, #y', { '#x': 'sweep', '#y': 'a' })).toBe('−a,−sweep');
  });
});

describe('usage per job', () => {
  const snapshot = (meter: Snapshot['meter'], invocations: Snapshot['invocations'], logBytes = 0): Snapshot => ({ meter, invocations, logBytes, errors: 0, hrtimeUs: 0 });
  const op = (service: 'DynamoDB' | 'SQS', operation: string, detail: string, caller: string, counts: Partial<Snapshot['meter'][string]>) => ({
    service,
    operation,
    detail,
    caller,
    calls: 0,
    failures: 0,
    capacityUnits: 0,
    estimatedUnits: 0,
    billedRequests: 0,
    messages: 0,
    returned: 0,
    ...counts,
  });

  it('divides a phase by its jobs and sets the sweeper and idle polling apart', () => {
    const before = snapshot({ get: op('DynamoDB', 'GetItem', 'waas-jobs sk=job', 'handlers', { calls: 10, capacityUnits: 10 }) }, { api: { invocations: 5, totalMs: 50, billedMs: 55, maxMs: 20 } });
    const after = snapshot(
      {
        get: op('DynamoDB', 'GetItem', 'waas-jobs sk=job', 'handlers', { calls: 35, capacityUnits: 35 }),
        query: op('DynamoDB', 'Query', 'waas-jobs index unsettled', 'handlers', { calls: 16, capacityUnits: 8, returned: 5 }),
        idle: op('SQS', 'ReceiveMessage', 'waas-jobs (empty)', 'event source', { calls: 40, billedRequests: 40 }),
        send: op('SQS', 'SendMessage', 'waas-jobs', 'handlers', { calls: 10, billedRequests: 10, messages: 10 }),
      },
      { api: { invocations: 15, totalMs: 150, billedMs: 165, maxMs: 20 }, sweeper: { invocations: 1, totalMs: 30, billedMs: 30, maxMs: 30 } },
      1000,
    );
    const phase = usagePerJob(diffPhase(before, after), 10, 1200);
    // 25 Gets in the phase, 5 of them the sweeper's: 2 a job.
    expect(phase.usage.dynamodb).toEqual([{ item: 'GetItem waas-jobs sk=job', calls: 2, readUnits: 2, writeUnits: 0 }]);
    expect(phase.usage.sqs).toEqual([{ item: 'SendMessage waas-jobs', calls: 1, billedRequests: 1 }]);
    expect(phase.usage.lambda).toEqual([{ fn: 'api', invocations: 1, billedMs: 11, memoryMb: 512 }]);
    expect(phase.usage.apiGateway).toEqual({ requests: 1, billedRequests: 1 });
    expect(phase.background.sweeperInvocations).toBe(1);
    expect(phase.background.calls.map((c) => c.calls)).toEqual([16, 5, 40]);
    // 100 B of app logs, plus per api invocation the access log line and, unless the functions'
    // system logs are at WARN, Lambda's START/END/REPORT lines.
    expect(phase.usage.logs.bytes).toBe(100 + (lambdaSystemLogLevel === 'WARN' ? 0 : 330) + 230);
  });

  it('estimates scale from loaded batching and uncontended durations', () => {
    const phase = (lambda: PhaseUsage['usage']['lambda']): PhaseUsage => ({
      jobs: 1,
      usage: { dynamodb: [], sqs: [], lambda, apiGateway: { requests: 1, billedRequests: 1 }, logs: { bytes: 0 } },
      operations: [],
      background: { sweeperInvocations: 0, calls: [] },
      lambda: [],
    });
    // Light: one execute invocation a job, 130 ms each. Heavy: a tenth of one a job, 900 ms each.
    const light = phase([{ fn: 'execute', invocations: 1, billedMs: 130, memoryMb: 512 }]);
    const heavy = phase([{ fn: 'execute', invocations: 0.1, billedMs: 90, memoryMb: 512 }, { fn: 'other', invocations: 1, billedMs: 7, memoryMb: 256 }]);
    expect(atScale(heavy, light).lambda).toEqual([
      { fn: 'execute', invocations: 0.1, billedMs: 13, memoryMb: 512 },
      { fn: 'other', invocations: 1, billedMs: 7, memoryMb: 256 },
    ]);
  });

  it('forgets operations that did not happen in the phase', () => {
    const same = { get: op('DynamoDB', 'GetItem', 'x', 'handlers', { calls: 3 }) };
    expect(diffSnapshots(same, same)).toEqual({});
  });
});

describe('statistics', () => {
  it('takes percentiles by nearest rank', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 95)).toBe(95);
    expect(percentile(values, 99)).toBe(99);
    expect(summarize([3, 1, 2])).toMatchObject({ count: 3, min: 1, p50: 2, max: 3, mean: 2 });
    expect(summarize([]).p50).toBeNaN();
  });
});

describe('reading a CPU profile', () => {
  const root = '/work/app';
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1, columnNumber: -1 } },
      { id: 2, callFrame: { functionName: '(idle)', url: '', lineNumber: -1, columnNumber: -1 } },
      { id: 3, callFrame: { functionName: 'get', url: 'file:///work/app/node_modules/dynalite/db/index.js', lineNumber: 9, columnNumber: 1 } },
      { id: 4, callFrame: { functionName: 'runJobAttempt', url: 'file:///work/app/lambdas/core/deliver.ts', lineNumber: 35, columnNumber: 1 } },
    ],
    startTime: 1_000,
    endTime: 11_000,
    samples: [3, 3, 4, 2, 3],
    timeDeltas: [1_000, 2_000, 3_000, 1_000, 3_000],
  };

  it('ranks functions by self time and groups them by package, idle apart', () => {
    const summary = summarizeProfile(profile, root);
    expect(summary.windowed).toBe(false);
    expect(summary.busyMs).toBe(9);
    expect(summary.idleMs).toBe(1);
    expect(summary.functions[0]).toMatchObject({ name: 'get', selfMs: 6, location: 'dynalite/db/index.js:10', package: 'dynalite' });
    expect(summary.functions[1]).toMatchObject({ name: 'runJobAttempt', selfMs: 3, package: 'waas lambdas/core' });
    expect(summary.packages[0]).toEqual({ package: 'dynalite', selfMs: 6, percent: 66.7 });
  });

  it('keeps to a window in the profile clock', () => {
    // Samples at 2,000 / 4,000 / 7,000 / 8,000 / 11,000 µs: the window 3,500–8,500 holds three.
    const summary = summarizeProfile(profile, root, { fromUs: 3_500, toUs: 8_500 });
    expect(summary.windowed).toBe(true);
    expect(summary.busyMs).toBe(5);
    expect(summary.idleMs).toBe(1);
  });
});
