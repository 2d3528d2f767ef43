import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Job, JobRequest } from '../../lambdas/core/job.ts';
import { ConditionFailed } from '../../lambdas/core/ports.ts';
import { AwsError } from '../../lambdas/adapters/aws/client.ts';
import { DynamoClientStore, DynamoJobStore, updateParts, type Documents } from '../../lambdas/adapters/dynamo.ts';
import { dynamoItemSize } from '../../lambdas/adapters/item-size.ts';
import { sweepShards, tables } from '../../lib/definitions.ts';
import { eventJson } from '../../bench/load.ts';
import { acceptedJob } from '../support/memory.ts';

type Input = Record<string, any>;

/** The document layer the stores call, answering as `answer` says and recording every call. */
class FakeDocuments implements Documents {
  readonly calls: Array<{ operation: string; input: Input }> = [];
  answer: (operation: string, input: Input) => unknown = () => ({});

  async send<O>(operation: string, input: Record<string, unknown>): Promise<O> {
    this.calls.push({ operation, input: structuredClone(input) });
    const answer = await this.answer(operation, input);
    if (answer instanceof Error) throw answer;
    return (answer ?? {}) as O;
  }

  inputs(operation: string): Input[] {
    return this.calls.filter((call) => call.operation === operation).map((call) => call.input);
  }
}

const table = 'Jobs';
const conditionalCheckFailed = () =>
  new AwsError({ name: 'ConditionalCheckFailedException', message: 'The conditional request failed', statusCode: 400, retryable: false, operation: 'UpdateItem', details: {} });

const jobId = '8a6e0804-2bd0-4672-b79d-d97027f9071e';
const job = acceptedJob({ jobId });
const request: JobRequest = { url: job.service, method: 'POST', headers: { 'Idempotency-Key': jobId }, body: '{"a":1}' };
/** A body no compression can shrink below a KB: the request needs an item of its own. */
const noise = randomBytes(3000).toString('base64');

function world() {
  const db = new FakeDocuments();
  return { db, store: new DynamoJobStore(db, table) };
}

/** A store whose items live in a map, written as the adapter writes them: for round trips. */
function storedWorld() {
  const { db, store } = world();
  const items = new Map<string, Input>();
  const key = (k: Input) => `${k['pk']}|${k['sk']}`;
  db.answer = (operation, input) => {
    if (operation === 'PutItem') items.set(key(input['Item']), structuredClone(input['Item']));
    if (operation === 'BatchWriteItem') for (const { PutRequest } of input['RequestItems'][table]) items.set(key(PutRequest.Item), structuredClone(PutRequest.Item));
    if (operation === 'GetItem') return { Item: items.get(key(input['Key'])) };
    if (operation === 'UpdateItem') return { Attributes: applyUpdate(items, key(input['Key']), input) };
    return {};
  };
  return { db, store, items };
}

/** Applies an UpdateExpression of the adapter's form (SET #a = :v, ... REMOVE #b, ...) to a stored item. */
function applyUpdate(items: Map<string, Input>, id: string, input: Input): Input {
  const item = structuredClone(items.get(id) ?? {});
  const [, sets = '', removes = ''] = /^(?:SET (.*?))?(?: ?REMOVE (.*))?$/.exec(input['UpdateExpression']) ?? [];
  for (const clause of sets ? sets.split(', ') : []) {
    const [name = '', value = ''] = clause.split(' = ');
    item[input['ExpressionAttributeNames'][name]] = input['ExpressionAttributeValues'][value];
  }
  for (const name of removes ? removes.split(', ') : []) delete item[input['ExpressionAttributeNames'][name]];
  items.set(id, item);
  return item;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('updateParts', () => {
  it('sets the changed fields and removes the listed ones, every name aliased to its stored attribute', () => {
    expect(updateParts({ status: 'running', attempts: 2, remove: ['leaseUntil', 'nextAttemptAt'] }, {})).toEqual({
      UpdateExpression: 'SET #s = :set_s, #a = :set_a REMOVE #l, #at',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeNames: { '#s': 's', '#a': 'a', '#l': 'l', '#at': 'at' },
      ExpressionAttributeValues: { ':set_s': 'running', ':set_a': 2 },
    });
  });

  it('does not remove a field that the same change sets, and skips undefined values', () => {
    const parts = updateParts({ nextAttemptAt: 5, leaseUntil: undefined, remove: ['nextAttemptAt', 'leaseUntil'] }, {});
    expect(parts.UpdateExpression).toBe('SET #at = :set_at REMOVE #l');
    expect(parts.ExpressionAttributeValues).toEqual({ ':set_at': 5 });
  });

  it('requires the job to exist, and expects values or absent attributes', () => {
    const parts = updateParts({ status: 'started' }, { expect: { attempts: 0, leaseUntil: undefined, notified: 'no' } });
    expect(parts.ConditionExpression).toBe('attribute_exists(pk) AND #a = :expect_attempts AND attribute_not_exists(#l) AND #n = :expect_notified');
    expect(parts.ExpressionAttributeValues).toEqual({ ':set_s': 'started', ':expect_attempts': 0, ':expect_notified': 'no' });
  });

  it('turns statusIn into an IN clause and leaseFree into "absent or expired"', () => {
    expect(updateParts({ status: 'failed' }, { statusIn: ['accepted', 'started'] }).ConditionExpression).toBe('attribute_exists(pk) AND #s IN (:status_0, :status_1)');
    const parts = updateParts({ notifyAttempts: 1 }, { leaseFree: { lease: 'notifyLeaseUntil', now: 1234 } });
    expect(parts.ConditionExpression).toBe('attribute_exists(pk) AND (attribute_not_exists(#nl) OR #nl <= :now)');
    expect(parts.ExpressionAttributeValues).toMatchObject({ ':now': 1234 });
  });

  it('writes the output and the history together, packed, and the write that makes a job final drops the request', () => {
    const output = { started: job.created, durationMs: 5, statusCode: 200, headers: {}, body: 'ok' };
    const parts = updateParts({ status: 'completed', output, history: [] }, {});
    expect(parts.UpdateExpression).toBe('SET #s = :set_s, #result = :set_result REMOVE #request');
    expect(parts.ExpressionAttributeValues?.[':set_result']).toBeInstanceOf(Uint8Array);
    expect(() => updateParts({ output }, {})).toThrow(/both, or neither/);
    expect(() => updateParts({ service: 'https://elsewhere.example.com' } as never, {})).toThrow(/never change/);
  });
});

describe('DynamoJobStore items', () => {
  it('a request that fits beside the state in one write unit is written with it, in one PutItem', async () => {
    const { db, store } = world();
    await store.create(job, request);
    expect(db.calls.map((call) => call.operation)).toEqual(['PutItem']);
    const { Item } = db.inputs('PutItem')[0] ?? {};
    expect(Item).toMatchObject({ pk: jobId, sk: 'job', created: job.created, s: 'accepted', a: 0, expiresAt: job.expiresAt, request: expect.any(Uint8Array) });
    expect(dynamoItemSize(Item)).toBeLessThanOrEqual(1024);
  });

  it('a larger request gets an item of its own, written once with the job in one BatchWrite', async () => {
    const { db, store } = world();
    await store.create(job, { ...request, body: noise });
    const [write] = db.inputs('BatchWriteItem');
    const [state, own] = write?.['RequestItems'][table] ?? [];
    expect(state.PutRequest.Item).toMatchObject({ pk: jobId, sk: 'job' });
    expect(state.PutRequest.Item).not.toHaveProperty('request');
    expect(own.PutRequest.Item).toEqual({ pk: jobId, sk: 'request', request: expect.any(Uint8Array), expiresAt: job.expiresAt });
  });

  it('a job and its request come back as they went in, whichever way they were stored, through take, update and get', async () => {
    const json = JSON.stringify({ items: Array.from({ length: 40 }, (_, i) => ({ sku: `SKU-${i}`, quantity: 1, price: 1999 })) });
    for (const body of [null, '', json, noise, 'ünïcode ✓']) {
      const { store, items } = storedWorld();
      await store.create(job, { ...request, body });
      const taken = await store.take(jobId, { status: 'started', attempts: 1, leaseUntil: 99 }, {});
      expect(taken).toEqual({ job: { ...job, status: 'started', attempts: 1, leaseUntil: 99 }, request: { ...request, body } });
      const output = { started: job.created, durationMs: 5, statusCode: 200, headers: { 'content-type': 'application/json' }, body: json, bodyEncoding: 'utf8' as const, bodyBytes: json.length, truncated: false };
      const history = [{ attempt: 1, started: job.created, durationMs: 5, statusCode: 200 }];
      const settled = { ...job, status: 'completed' as const, attempts: 1, output, history };
      expect(await store.lease(jobId, { status: 'completed', output, history, remove: ['leaseUntil'] }, {})).toEqual(settled);
      expect(await store.get(jobId)).toEqual(settled);
      expect(items.get(`${jobId}|job`)).not.toHaveProperty('request');
    }
  });

  it('a job that succeeds at once stays within one write unit at every write, with 1 KiB JSON bodies both ways', async () => {
    const { store, items } = storedWorld();
    // The benchmark's body: an order event with random ids, about half of it incompressible.
    const body = JSON.stringify(eventJson(1024));
    const sizes: number[] = [];
    const size = () => sizes.push(dynamoItemSize(items.get(`${jobId}|job`) ?? {}));
    await store.create({ ...job, callback: 'https://callback.example.com/done', notified: 'no' }, { ...request, body });
    size();
    await store.take(jobId, { status: 'started', attempts: 1, leaseUntil: Date.now(), lastUpdate: new Date().toISOString() }, {});
    size();
    const output = { started: new Date().toISOString(), durationMs: 102, statusCode: 200, headers: { 'content-type': 'application/json', 'content-length': '1024', date: new Date().toUTCString() }, body, bodyEncoding: 'utf8' as const, bodyBytes: body.length, truncated: false };
    await store.update(jobId, { status: 'completed', output, history: [{ attempt: 1, started: output.started, durationMs: 102, statusCode: 200 }], notified: 'true', notifyoutput: '200', notifyAttempts: 1, lastUpdate: new Date().toISOString(), remove: ['leaseUntil'] }, {});
    size();
    expect(body.length).toBe(1024);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1024);
  });

  it('remove deletes both items', async () => {
    const { db, store } = world();
    await store.remove(jobId);
    expect(db.inputs('BatchWriteItem')[0]).toEqual({
      RequestItems: { [table]: [{ DeleteRequest: { Key: { pk: jobId, sk: 'job' } } }, { DeleteRequest: { Key: { pk: jobId, sk: 'request' } } }] },
    });
  });

  it('sends again what DynamoDB left unprocessed, and gives up loudly after 8 rounds', async () => {
    vi.useFakeTimers();
    const { db, store } = world();
    let rounds = 0;
    db.answer = (operation, input) => (operation === 'BatchWriteItem' && rounds++ === 0 ? { UnprocessedItems: { [table]: input['RequestItems'][table].slice(1) } } : {});
    const created = store.create(job, { ...request, body: noise });
    await vi.runAllTimersAsync();
    await created;
    expect(db.inputs('BatchWriteItem').map((input) => input['RequestItems'][table].length)).toEqual([2, 1]);

    db.answer = (_operation, input) => ({ UnprocessedItems: input['RequestItems'] });
    const refused = expect(store.create(job, { ...request, body: noise })).rejects.toThrow(/unprocessed/);
    await vi.runAllTimersAsync();
    await refused;
  });
});

describe('DynamoJobStore writes and reads', () => {
  it('update is one conditional UpdateItem on the job item that asks nothing back; lease is the same write returning the job as written', async () => {
    const { db, store } = storedWorld();
    await store.create(job, request);
    db.calls.length = 0;
    await store.update(jobId, { status: 'started' }, {});
    expect(await store.lease(jobId, { attempts: 1 }, { expect: { attempts: 0 } })).toEqual({ ...job, status: 'started', attempts: 1 });
    expect(db.inputs('UpdateItem')).toEqual([
      { TableName: table, Key: { pk: jobId, sk: 'job' }, ReturnValues: 'NONE', ...updateParts({ status: 'started' }, {}) },
      { TableName: table, Key: { pk: jobId, sk: 'job' }, ReturnValues: 'ALL_NEW', ...updateParts({ attempts: 1 }, { expect: { attempts: 0 } }) },
    ]);
  });

  it('take reads a request of its own consistently after the write; without one, there is no request', async () => {
    const { db, store } = storedWorld();
    await store.create(job, { ...request, body: noise });
    expect((await store.take(jobId, {}, {})).request).toEqual({ ...request, body: noise });
    expect(db.inputs('GetItem')).toEqual([{ TableName: table, Key: { pk: jobId, sk: 'request' }, ConsistentRead: true }]);
    const bare = world();
    bare.db.answer = (operation) => (operation === 'UpdateItem' ? { Attributes: { pk: jobId, sk: 'job', s: 'started' } } : {});
    expect(await bare.store.take(jobId, {}, {})).toEqual({ job: { jobId, status: 'started', output: null, history: [] } });
  });

  it('turns ConditionalCheckFailedException into ConditionFailed, and passes any other error through', async () => {
    const { db, store } = world();
    db.answer = () => conditionalCheckFailed();
    await expect(store.update(jobId, { status: 'failed' }, { statusIn: ['running'] })).rejects.toBeInstanceOf(ConditionFailed);
    const throttled = new AwsError({ name: 'ProvisionedThroughputExceededException', message: 'Rate exceeded', statusCode: 400, retryable: true, operation: 'UpdateItem', details: {} });
    db.answer = () => throttled;
    await expect(store.update(jobId, { status: 'failed' }, {})).rejects.toBe(throttled);
  });

  it('get reads the job item consistently; an unknown job is undefined', async () => {
    const { db, store } = storedWorld();
    expect(await store.get(jobId)).toBeUndefined();
    await store.create(job, request);
    expect(await store.get(jobId)).toEqual(job);
    expect(db.inputs('GetItem').at(-1)).toEqual({ TableName: table, Key: { pk: jobId, sk: 'job' }, ConsistentRead: true });
  });

  it('unsettled walks every shard of the sparse index, page by page, and reads each job consistently, 100 at a time', async () => {
    const { db, store } = world();
    let unprocessedOnce = true;
    db.answer = (operation, input) => {
      if (operation === 'Query') {
        const shard = input['ExpressionAttributeValues'][':shard'];
        if (shard === '3' && !input['ExclusiveStartKey']) return { Items: [{ pk: '3a', sk: 'job' }], LastEvaluatedKey: { pk: '3a', sk: 'job', sweep: '3' } };
        if (shard === '3') return { Items: [{ pk: '3b', sk: 'job' }, { pk: '3-gone', sk: 'job' }] };
        if (shard === 'f') return { Items: [{ pk: 'f0', sk: 'job' }] };
        return { Items: [] };
      }
      const keys: Array<{ pk: string }> = input['RequestItems'][table].Keys;
      // The first batch of shard 3 leaves its last key unprocessed: it is asked for again.
      const [answered, left] = unprocessedOnce && keys.length > 1 ? [keys.slice(0, -1), keys.slice(-1)] : [keys, []];
      if (keys.length > 1) unprocessedOnce = false;
      return {
        Responses: { [table]: answered.filter((key) => key.pk !== '3-gone').map((key) => ({ pk: key.pk, sk: 'job', s: 'running' })) },
        ...(left.length ? { UnprocessedKeys: { [table]: { Keys: left } } } : {}),
      };
    };
    vi.useFakeTimers();
    const walk = (async () => {
      const found: string[] = [];
      for await (const unsettled of store.unsettled()) found.push(unsettled.jobId);
      return found;
    })();
    await vi.runAllTimersAsync();
    expect(await walk).toEqual(['3a', '3b', 'f0']);

    const queries = db.inputs('Query');
    expect(queries.map((input) => input['ExpressionAttributeValues'][':shard'])).toEqual([...sweepShards.slice(0, 4), '3', ...sweepShards.slice(4)]);
    expect(queries[0]).toMatchObject({ TableName: table, IndexName: tables.jobs.unsettledIndex.name, KeyConditionExpression: '#shard = :shard', ExpressionAttributeNames: { '#shard': 'sweep' } });
    expect(queries[4]?.['ExclusiveStartKey']).toEqual({ pk: '3a', sk: 'job', sweep: '3' });
    const reads = db.inputs('BatchGetItem').map((input) => input['RequestItems'][table]);
    expect(reads.map((read) => read.Keys.map((key: { pk: string }) => key.pk))).toEqual([['3a'], ['3b', '3-gone'], ['3-gone'], ['f0']]);
    expect(reads.every((read) => read.ConsistentRead === true)).toBe(true);
  });
});

describe('DynamoJobStore and a DATA_DIR of the first layout', () => {
  it('an unsettled job stored with every field plain is rewritten in today\'s layout before it is handed on, its request with it', async () => {
    const { db, store, items } = storedWorld();
    const pending = { ...job, status: 'running' as const, attempts: 1, nextAttemptAt: 5, sweep: '8', history: [{ attempt: 1, started: job.created, durationMs: 3, statusCode: 503 }] };
    const firstLayout = { pk: jobId, sk: 'job', ...pending };
    items.set(`${jobId}|job`, firstLayout);
    items.set(`${jobId}|request`, { pk: jobId, sk: 'request', url: request.url, method: 'POST', headers: request.headers, body: request.body, expiresAt: 1 });
    const answer = db.answer;
    db.answer = (operation, input) => {
      if (operation === 'Query') return { Items: input['ExpressionAttributeValues'][':shard'] === '8' ? [{ pk: jobId, sk: 'job' }] : [] };
      if (operation === 'BatchGetItem') return { Responses: { [table]: [items.get(`${jobId}|job`)] } };
      return answer(operation, input);
    };
    const found: Job[] = [];
    for await (const unsettled of store.unsettled()) found.push(unsettled);
    expect(found).toEqual([pending]);
    expect(items.get(`${jobId}|job`)).toMatchObject({ s: 'running', a: 1, at: 5, sweep: '8', request: expect.any(Uint8Array) });
    expect(items.get(`${jobId}|job`)).not.toHaveProperty('status');
    // Today's writes now find the fields they name.
    expect(await store.take(jobId, { status: 'running', attempts: 2 }, { expect: { attempts: 1 } })).toEqual({ job: { ...pending, attempts: 2 }, request });
  });

  it('a settled job of the first layout reads as it was, unchanged', async () => {
    const { store, items } = storedWorld();
    items.set(`${jobId}|job`, { pk: jobId, sk: 'job', ...job, status: 'completed' });
    expect(await store.get(jobId)).toEqual({ ...job, status: 'completed' });
  });
});

describe('DynamoJobStore idempotency keys', () => {
  it('claims a new key with a conditional put that lets an expired key be reused', async () => {
    const { db, store } = world();
    expect(await store.rememberIdempotent('c1', 'key-1', jobId, '{"job_id":"x"}', 2_000_000_000, 1_700_000_000_000)).toBeUndefined();
    expect(db.inputs('PutItem')[0]).toMatchObject({
      TableName: table,
      Item: { pk: 'idem#c1#key-1', sk: 'idem', jobId, answer: '{"job_id":"x"}', expiresAt: 2_000_000_000 },
      ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :now',
      ExpressionAttributeValues: { ':now': 1_700_000_000 },
    });
  });

  it('returns the earlier answer when the key is taken', async () => {
    const { db, store } = world();
    db.answer = (operation) => (operation === 'PutItem' ? conditionalCheckFailed() : { Item: { pk: 'idem#c1#key-1', sk: 'idem', jobId: 'first', answer: '{"job_id":"first"}' } });
    expect(await store.rememberIdempotent('c1', 'key-1', jobId, '{"job_id":"second"}', 2_000_000_000, 1_700_000_000_000)).toBe('{"job_id":"first"}');
  });

  it('claims the key when the earlier one vanished between the put and the read, instead of answering with its own job', async () => {
    const { db, store } = world();
    let puts = 0;
    db.answer = (operation) => (operation === 'PutItem' && puts++ === 0 ? conditionalCheckFailed() : {});
    expect(await store.rememberIdempotent('c1', 'key-1', jobId, '{"job_id":"mine"}', 2_000_000_000, 1_700_000_000_000)).toBeUndefined();
    expect(db.inputs('PutItem')).toHaveLength(2);
  });

  it('forgetIdempotent deletes the key', async () => {
    const { db, store } = world();
    await store.forgetIdempotent('c1', 'key-1');
    expect(db.inputs('DeleteItem')[0]).toEqual({ TableName: table, Key: { pk: 'idem#c1#key-1', sk: 'idem' } });
  });
});

describe('DynamoClientStore', () => {
  it('revoke is a conditional update: true for a client, false for an unknown one', async () => {
    const db = new FakeDocuments();
    const clients = new DynamoClientStore(db, 'Clients');
    let updates = 0;
    db.answer = () => (updates++ === 0 ? {} : conditionalCheckFailed());
    expect(await clients.revoke('c1', '2025-01-01T00:00:00.000Z')).toBe(true);
    expect(await clients.revoke('nobody', '2025-01-01T00:00:00.000Z')).toBe(false);
    expect(db.inputs('UpdateItem')[0]).toMatchObject({ TableName: 'Clients', Key: { clientId: 'c1' }, ConditionExpression: 'attribute_exists(clientId)' });
  });

  it('list pages through the table', async () => {
    const db = new FakeDocuments();
    const clients = new DynamoClientStore(db, 'Clients');
    db.answer = (_operation, input) => (input['ExclusiveStartKey'] ? { Items: [{ clientId: 'b' }] } : { Items: [{ clientId: 'a' }], LastEvaluatedKey: { clientId: 'a' } });
    expect((await clients.list()).map((client) => client.clientId)).toEqual(['a', 'b']);
  });
});
