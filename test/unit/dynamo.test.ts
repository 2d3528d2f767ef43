import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, BatchWriteCommand, DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Job, JobRequest } from '../../lambdas/core/job.ts';
import { ConditionFailed } from '../../lambdas/core/ports.ts';
import { DynamoClientStore, DynamoJobStore, updateParts } from '../../lambdas/adapters/dynamo.ts';
import { sweepShards, tables } from '../../lib/definitions.ts';

const table = 'Jobs';
const ddb = mockClient(DynamoDBDocumentClient);
const db = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }));
const store = new DynamoJobStore(db, table);

const conditionalCheckFailed = () => new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });

const jobId = '8a6e0804-2bd0-4672-b79d-d97027f9071e';
const job: Job = {
  jobId,
  clientId: '11111111111111',
  created: '2025-01-01T00:00:00.000Z',
  lastUpdate: '2025-01-01T00:00:00.000Z',
  service: 'https://service.example.com',
  methodtype: 'POST',
  callback: null,
  status: 'accepted',
  attempts: 0,
  maxAttempts: 5,
  timeoutMs: 10_000,
  output: null,
  history: [],
  notified: 'n/a',
  notifyoutput: null,
  notifyAttempts: 0,
  callbackMaxAttempts: 5,
  expiresAt: 1_738_000_000,
};
const request: JobRequest = { url: job.service, method: 'POST', headers: { 'Idempotency-Key': jobId }, body: '{"a":1}' };

beforeEach(() => {
  ddb.reset();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('updateParts', () => {
  it('sets the changed fields and removes the listed ones, every name aliased', () => {
    expect(updateParts({ status: 'running', attempts: 2, remove: ['leaseUntil', 'nextAttemptAt'] }, {})).toEqual({
      UpdateExpression: 'SET #status = :set_status, #attempts = :set_attempts REMOVE #leaseUntil, #nextAttemptAt',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeNames: { '#status': 'status', '#attempts': 'attempts', '#leaseUntil': 'leaseUntil', '#nextAttemptAt': 'nextAttemptAt' },
      ExpressionAttributeValues: { ':set_status': 'running', ':set_attempts': 2 },
    });
  });

  it('does not remove a field that the same change sets, and skips undefined values', () => {
    const parts = updateParts({ nextAttemptAt: 5, leaseUntil: undefined, remove: ['nextAttemptAt', 'leaseUntil'] }, {});
    expect(parts.UpdateExpression).toBe('SET #nextAttemptAt = :set_nextAttemptAt REMOVE #leaseUntil');
    expect(parts.ExpressionAttributeValues).toEqual({ ':set_nextAttemptAt': 5 });
  });

  it('requires the job to exist, and expects values or absent attributes', () => {
    const parts = updateParts({ status: 'started' }, { expect: { attempts: 0, leaseUntil: undefined, notified: 'no' } });
    expect(parts.ConditionExpression).toBe('attribute_exists(pk) AND #attempts = :expect_attempts AND attribute_not_exists(#leaseUntil) AND #notified = :expect_notified');
    expect(parts.ExpressionAttributeNames).toMatchObject({ '#attempts': 'attempts', '#leaseUntil': 'leaseUntil', '#notified': 'notified' });
    expect(parts.ExpressionAttributeValues).toEqual({ ':set_status': 'started', ':expect_attempts': 0, ':expect_notified': 'no' });
  });

  it('turns statusIn into an IN clause', () => {
    const parts = updateParts({ status: 'failed' }, { statusIn: ['accepted', 'started', 'running'] });
    expect(parts.ConditionExpression).toBe('attribute_exists(pk) AND #status IN (:status_0, :status_1, :status_2)');
    expect(parts.ExpressionAttributeValues).toMatchObject({ ':status_0': 'accepted', ':status_1': 'started', ':status_2': 'running' });
  });

  it('turns leaseFree into "absent or expired"', () => {
    const parts = updateParts({ notifyAttempts: 1 }, { leaseFree: { lease: 'notifyLeaseUntil', now: 1234 } });
    expect(parts.ConditionExpression).toBe('attribute_exists(pk) AND (attribute_not_exists(#notifyLeaseUntil) OR #notifyLeaseUntil <= :now)');
    expect(parts.ExpressionAttributeValues).toMatchObject({ ':now': 1234 });
  });

  it('keeps the value set and the value expected apart when they name the same field', () => {
    const parts = updateParts(
      { attempts: 1, leaseUntil: 2000, remove: ['nextAttemptAt'] },
      { expect: { attempts: 0, leaseUntil: 1000 }, statusIn: ['running'], leaseFree: { lease: 'leaseUntil', now: 1500 } },
    );
    expect(parts).toEqual({
      UpdateExpression: 'SET #attempts = :set_attempts, #leaseUntil = :set_leaseUntil REMOVE #nextAttemptAt',
      ConditionExpression:
        'attribute_exists(pk) AND #attempts = :expect_attempts AND #leaseUntil = :expect_leaseUntil AND #status IN (:status_0) AND (attribute_not_exists(#leaseUntil) OR #leaseUntil <= :now)',
      ExpressionAttributeNames: { '#attempts': 'attempts', '#leaseUntil': 'leaseUntil', '#nextAttemptAt': 'nextAttemptAt', '#status': 'status' },
      ExpressionAttributeValues: {
        ':set_attempts': 1,
        ':set_leaseUntil': 2000,
        ':expect_attempts': 0,
        ':expect_leaseUntil': 1000,
        ':status_0': 'running',
        ':now': 1500,
      },
    });
  });
});

describe('DynamoJobStore.update', () => {
  it('sends one conditional UpdateCommand on the job item and returns the job as written', async () => {
    ddb.on(UpdateCommand).resolves({ Attributes: { pk: jobId, sk: 'job', ...job, status: 'started', attempts: 1 } });
    const written = await store.update(jobId, { status: 'started', attempts: 1 }, { expect: { attempts: 0 } });
    expect(written).toEqual({ ...job, status: 'started', attempts: 1 });
    expect(written).not.toHaveProperty('pk');
    const calls = ddb.commandCalls(UpdateCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.args[0].input).toEqual({
      TableName: table,
      Key: { pk: jobId, sk: 'job' },
      ReturnValues: 'ALL_NEW',
      ...updateParts({ status: 'started', attempts: 1 }, { expect: { attempts: 0 } }),
    });
  });

  it('turns ConditionalCheckFailedException into ConditionFailed', async () => {
    ddb.on(UpdateCommand).rejects(conditionalCheckFailed());
    await expect(store.update(jobId, { status: 'failed' }, { statusIn: ['running'] })).rejects.toBeInstanceOf(ConditionFailed);
  });

  it('passes any other error through as it is', async () => {
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ProvisionedThroughputExceededException' });
    ddb.on(UpdateCommand).rejects(throttled);
    await expect(store.update(jobId, { status: 'failed' }, {})).rejects.toBe(throttled);
  });
});

/** A body no deflate can shrink, big enough that the request needs an item of its own. */
const noise = randomBytes(3000).toString('base64');
const { jobId: _jobId, ...state } = job;

describe('DynamoJobStore.create and remove', () => {
  it('a request that fits beside the state in one write unit is written with it, in one PutItem', async () => {
    ddb.on(PutCommand).resolves({});
    await store.create(job, request);
    expect(ddb.commandCalls(PutCommand)[0]?.args[0].input).toEqual({
      TableName: table,
      Item: { pk: jobId, sk: 'job', ...state, request: { headers: request.headers, body: request.body } },
    });
  });

  it('a larger request gets an item of its own, written once with the job in one BatchWrite', async () => {
    ddb.on(BatchWriteCommand).resolves({});
    await store.create(job, { ...request, body: noise });
    expect(ddb.commandCalls(BatchWriteCommand)[0]?.args[0].input).toEqual({
      RequestItems: {
        [table]: [
          { PutRequest: { Item: { pk: jobId, sk: 'job', ...state } } },
          { PutRequest: { Item: { pk: jobId, sk: 'request', headers: request.headers, bodyZ: expect.any(Uint8Array), expiresAt: job.expiresAt } } },
        ],
      },
    });
  });

  it('a body that deflates well is kept deflated, and comes back as it went in', async () => {
    ddb.on(PutCommand).resolves({});
    const body = JSON.stringify({ items: Array.from({ length: 40 }, (_, i) => ({ sku: `SKU-${i}`, quantity: 1, price: 1999 })) });
    await store.create(job, { ...request, body });
    const item = ddb.commandCalls(PutCommand)[0]?.args[0].input.Item ?? {};
    const stored = item['request'] as { bodyZ: Uint8Array };
    expect(stored.bodyZ.length).toBeLessThan(body.length / 3);
    ddb.on(UpdateCommand).resolves({ Attributes: { ...item, status: 'started' } });
    expect((await store.take(jobId, { status: 'started' }, {})).request).toEqual({ ...request, body });
  });

  it('sends again what DynamoDB left unprocessed', async () => {
    vi.useFakeTimers();
    const jobPut = { PutRequest: { Item: { pk: jobId, sk: 'job', ...state } } };
    ddb.on(BatchWriteCommand).resolvesOnce({ UnprocessedItems: { [table]: [jobPut] } }).resolves({});
    const created = store.create(job, { ...request, body: noise });
    await vi.runAllTimersAsync();
    await created;
    const calls = ddb.commandCalls(BatchWriteCommand);
    expect(calls).toHaveLength(2);
    expect(calls[1]?.args[0].input).toEqual({ RequestItems: { [table]: [jobPut] } });
  });

  it('gives up, loudly, when writes stay unprocessed', async () => {
    vi.useFakeTimers();
    ddb.on(BatchWriteCommand).callsFake((input: { RequestItems: Record<string, unknown[]> }) => ({ UnprocessedItems: input.RequestItems }));
    const created = store.create(job, { ...request, body: noise });
    const refused = expect(created).rejects.toThrow(/unprocessed/);
    await vi.runAllTimersAsync();
    await refused;
    expect(ddb.commandCalls(BatchWriteCommand)).toHaveLength(8);
  });

  it('remove deletes both items', async () => {
    ddb.on(BatchWriteCommand).resolves({});
    await store.remove(jobId);
    expect(ddb.commandCalls(BatchWriteCommand)[0]?.args[0].input).toEqual({
      RequestItems: {
        [table]: [{ DeleteRequest: { Key: { pk: jobId, sk: 'job' } } }, { DeleteRequest: { Key: { pk: jobId, sk: 'request' } } }],
      },
    });
  });
});

describe('DynamoJobStore reads', () => {
  it('get reads the job item consistently, without its keys', async () => {
    ddb.on(GetCommand, { TableName: table, Key: { pk: jobId, sk: 'job' }, ConsistentRead: true }).resolves({ Item: { pk: jobId, sk: 'job', ...state } });
    expect(await store.get(jobId)).toEqual(job);
  });

  it('get of an unknown job is undefined', async () => {
    ddb.on(GetCommand).resolves({});
    expect(await store.get(jobId)).toBeUndefined();
  });

  it('take returns the job as leased and the request beside it, from the one write', async () => {
    ddb.on(UpdateCommand).resolves({ Attributes: { pk: jobId, sk: 'job', ...state, status: 'started', request: { headers: {} } } });
    expect(await store.take(jobId, { status: 'started' }, {})).toEqual({ job: { ...job, status: 'started' }, request: { url: job.service, method: 'POST', headers: {}, body: null } });
    expect(ddb.commandCalls(GetCommand)).toHaveLength(0);
  });

  it('take reads a request of its own consistently after the write; without one, there is no request', async () => {
    ddb.on(UpdateCommand).resolves({ Attributes: { pk: jobId, sk: 'job', ...state } });
    ddb.on(GetCommand, { TableName: table, Key: { pk: jobId, sk: 'request' }, ConsistentRead: true }).resolvesOnce({ Item: { pk: jobId, sk: 'request', headers: {}, body: noise } }).resolves({});
    expect((await store.take(jobId, {}, {})).request).toEqual({ url: job.service, method: 'POST', headers: {}, body: noise });
    expect(await store.take(jobId, {}, {})).toEqual({ job });
  });

  it('an output that deflates well is written deflated and read back whole; the write that makes a job final drops its request', async () => {
    const output = { started: job.created, durationMs: 5, statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ rows: Array(50).fill({ a: 1, b: 'two' }) }) };
    const parts = updateParts({ status: 'completed', output }, {});
    expect(parts.UpdateExpression).toBe('SET #status = :set_status, #outputZ = :set_outputZ REMOVE #output, #request');
    const outputZ = parts.ExpressionAttributeValues?.[':set_outputZ'] as Uint8Array;
    expect(outputZ.length).toBeLessThan(JSON.stringify(output).length / 3);
    ddb.on(GetCommand).resolves({ Item: { pk: jobId, sk: 'job', ...state, status: 'completed', outputZ } });
    expect(await store.get(jobId)).toEqual({ ...job, status: 'completed', output });
  });

  it('unsettled walks every shard of the sparse index, page by page, and reads each job consistently', async () => {
    ddb.on(QueryCommand).callsFake((input: { ExpressionAttributeValues: Record<string, string>; ExclusiveStartKey?: unknown }) => {
      const shard = input.ExpressionAttributeValues[':shard'];
      if (shard === '3' && !input.ExclusiveStartKey) return { Items: [{ pk: '3a', sk: 'job' }], LastEvaluatedKey: { pk: '3a', sk: 'job', sweep: '3' } };
      if (shard === '3') return { Items: [{ pk: '3b', sk: 'job' }, { pk: '3-gone', sk: 'job' }] };
      if (shard === 'f') return { Items: [{ pk: 'f0', sk: 'job' }] };
      return { Items: [] };
    });
    let unprocessedOnce = true;
    ddb.on(BatchGetCommand).callsFake((input: { RequestItems: Record<string, { Keys: Array<{ pk: string }> }> }) => {
      const keys = input.RequestItems[table]?.Keys ?? [];
      // The first batch of shard 3 leaves its last key unprocessed: it is asked for again.
      const [answered, left] = unprocessedOnce && keys.length > 1 ? [keys.slice(0, -1), keys.slice(-1)] : [keys, []];
      if (keys.length > 1) unprocessedOnce = false;
      return {
        Responses: { [table]: answered.filter((key) => key.pk !== '3-gone').map((key) => ({ pk: key.pk, sk: 'job', ...job, jobId: key.pk })) },
        ...(left.length ? { UnprocessedKeys: { [table]: { Keys: left } } } : {}),
      };
    });
    const found: string[] = [];
    for await (const unsettled of store.unsettled()) found.push(unsettled.jobId);
    expect(found).toEqual(['3a', '3b', 'f0']);

    const queries = ddb.commandCalls(QueryCommand).map((call) => call.args[0].input);
    expect(queries.map((input) => input.ExpressionAttributeValues?.[':shard'])).toEqual([...sweepShards.slice(0, 4), '3', ...sweepShards.slice(4)]);
    expect(queries[0]).toMatchObject({ TableName: table, IndexName: tables.jobs.unsettledIndex.name, KeyConditionExpression: '#shard = :shard', ExpressionAttributeNames: { '#shard': 'sweep' } });
    expect(queries[4]?.ExclusiveStartKey).toEqual({ pk: '3a', sk: 'job', sweep: '3' });
    const reads = ddb.commandCalls(BatchGetCommand).map((call) => call.args[0].input.RequestItems?.[table]);
    expect(reads.map((read) => read?.Keys?.map((key) => key['pk']))).toEqual([['3a'], ['3b', '3-gone'], ['3-gone'], ['f0']]);
    expect(reads.every((read) => read?.ConsistentRead === true && read.Keys?.every((key) => key['sk'] === 'job'))).toBe(true);
  });
});

describe('DynamoJobStore idempotency keys', () => {
  it('claims a new key with a conditional put that lets an expired key be reused', async () => {
    ddb.on(PutCommand).resolves({});
    expect(await store.rememberIdempotent('c1', 'key-1', jobId, '{"job_id":"x"}', 2_000_000_000)).toBeUndefined();
    const input = ddb.commandCalls(PutCommand)[0]?.args[0].input;
    expect(input).toMatchObject({
      TableName: table,
      Item: { pk: 'idem#c1#key-1', sk: 'idem', jobId, answer: '{"job_id":"x"}', expiresAt: 2_000_000_000 },
      ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :now',
    });
  });

  it('returns the earlier answer when the key is taken', async () => {
    ddb.on(PutCommand).rejects(conditionalCheckFailed());
    ddb.on(GetCommand, { Key: { pk: 'idem#c1#key-1', sk: 'idem' } }).resolves({ Item: { pk: 'idem#c1#key-1', sk: 'idem', jobId: 'first', answer: '{"job_id":"first"}' } });
    expect(await store.rememberIdempotent('c1', 'key-1', jobId, '{"job_id":"second"}', 2_000_000_000)).toBe('{"job_id":"first"}');
  });

  it('claims the key when the earlier one vanished between the put and the read, instead of answering with its own job', async () => {
    // Returning this job's own answer as "the earlier one" makes submit delete this job and still
    // answer 202 with its id: a job that was accepted and will never run.
    ddb.on(PutCommand).rejectsOnce(conditionalCheckFailed()).resolves({});
    ddb.on(GetCommand).resolves({});
    expect(await store.rememberIdempotent('c1', 'key-1', jobId, '{"job_id":"mine"}', 2_000_000_000)).toBeUndefined();
    expect(ddb.commandCalls(PutCommand)).toHaveLength(2);
  });

  it('forgetIdempotent deletes the key', async () => {
    ddb.on(DeleteCommand).resolves({});
    await store.forgetIdempotent('c1', 'key-1');
    expect(ddb.commandCalls(DeleteCommand)[0]?.args[0].input).toEqual({ TableName: table, Key: { pk: 'idem#c1#key-1', sk: 'idem' } });
  });
});

describe('DynamoClientStore', () => {
  const clients = new DynamoClientStore(db, 'Clients');

  it('revoke is a conditional update: true for a client, false for an unknown one', async () => {
    ddb.on(UpdateCommand).resolvesOnce({}).rejectsOnce(conditionalCheckFailed());
    expect(await clients.revoke('c1', '2025-01-01T00:00:00.000Z')).toBe(true);
    expect(await clients.revoke('nobody', '2025-01-01T00:00:00.000Z')).toBe(false);
    expect(ddb.commandCalls(UpdateCommand)[0]?.args[0].input).toMatchObject({
      TableName: 'Clients',
      Key: { clientId: 'c1' },
      ConditionExpression: 'attribute_exists(clientId)',
    });
  });

  it('list pages through the table', async () => {
    ddb
      .on(ScanCommand)
      .resolvesOnce({ Items: [{ clientId: 'a' }], LastEvaluatedKey: { clientId: 'a' } })
      .resolvesOnce({ Items: [{ clientId: 'b' }] });
    expect((await clients.list()).map((client) => client.clientId)).toEqual(['a', 'b']);
  });
});
