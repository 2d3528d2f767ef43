/**
 * The DynamoDB stores against the AWS SDK's document client, mocked with aws-sdk-client-mock:
 * the commands they send (as plain-value inputs, before the document client marshals them), in
 * which order, and what they make of DynamoDB's answers and refusals.
 */
import { randomBytes } from 'node:crypto';
import { ConditionalCheckFailedException, DynamoDBClient, ProvisionedThroughputExceededException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
  type PutCommandInput,
  type QueryCommandInput,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import {
  toHaveReceivedCommand,
  toHaveReceivedCommandExactlyOnceWith,
  toHaveReceivedCommandTimes,
  toHaveReceivedCommandWith,
  toHaveReceivedNthCommandWith,
  type CustomMatcher,
} from 'aws-sdk-client-mock-vitest';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { documentOptions } from '../../lambdas/adapters/aws.ts';
import { DynamoClientStore, DynamoJobStore, updateParts } from '../../lambdas/adapters/dynamo.ts';
import { DynamoSweepStateStore } from '../../lambdas/adapters/sweep-state.ts';
import { dynamoItemSize } from '../../lambdas/adapters/item-size.ts';
import type { AttemptOutput, JobRequest } from '../../lambdas/core/job.ts';
import { ConditionFailed, type Client, type IdempotencyRecord } from '../../lambdas/core/ports.ts';
import { tables } from '../../lib/definitions.ts';
import { expectPlaceholdersMatch } from '../support/expressions.ts';
import { acceptedJob } from '../support/memory.ts';

expect.extend({ toHaveReceivedCommand, toHaveReceivedCommandExactlyOnceWith, toHaveReceivedCommandTimes, toHaveReceivedCommandWith, toHaveReceivedNthCommandWith });

declare module 'vitest' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any, @typescript-eslint/no-empty-object-type
  interface Matchers<T = any> extends CustomMatcher<T> {}
}

type Item = Record<string, any>;

const ddb = mockClient(DynamoDBDocumentClient);
const documents = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }), documentOptions);

const table = 'Jobs';
const jobId = '8a6e0804-2bd0-4672-b79d-d97027f9071e';
const job = acceptedJob({ jobId });
/** The same job in the unsettled index from submit on (as every job of the local stack): its state has an item from submit on. */
const indexed = { ...job, sweep: '8' };
const request: JobRequest = { url: job.service, method: 'POST', headers: { 'Idempotency-Key': jobId }, body: '{"a":1}' };
/** A body no compression can shrink below a KB: the request needs an item of its own. */
const noise = randomBytes(3000).toString('base64');

const store = () => new DynamoJobStore(documents, table);

const conditionalCheckFailed = (Item?: Item) =>
  new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {}, ...(Item ? { Item: marshall(Item) } : {}) });
const throttled = () => new ProvisionedThroughputExceededException({ message: 'Rate exceeded', $metadata: {} });

/** The inputs of every call of one command, in order. */
const inputs = <T extends object>(command: abstract new (...args: never[]) => { input: T }): T[] =>
  ddb.calls().flatMap((call) => (call.args[0] instanceof command ? [call.args[0].input as T] : []));

/** The commands sent, by name, in order. */
const sent = () => ddb.calls().map((call) => call.args[0].constructor.name);

/**
 * A table behind the mock: items by key, written and read as DynamoDB would. Of a job write's
 * condition only whether its item must exist (an update) or must not (a put) is judged; the
 * rest is judged by the contract and end-to-end tests, against dynalite.
 */
function emulatedTable() {
  const items = new Map<string, Item>();
  const id = (key: Item | undefined) => `${key?.['pk']}|${key?.['sk']}`;
  ddb.on(PutCommand).callsFake((input: PutCommandInput) => {
    if (input.ConditionExpression === 'attribute_not_exists(pk)' && items.has(id(input.Item))) throw conditionalCheckFailed();
    items.set(id(input.Item), structuredClone(input.Item ?? {}));
    return {};
  });
  ddb.on(GetCommand).callsFake((input: { Key: Item }) => {
    const item = items.get(id(input.Key));
    return item ? { Item: structuredClone(item) } : {};
  });
  ddb.on(QueryCommand).callsFake((input: QueryCommandInput) => {
    const [, pk = '', from = '', to = ''] = /^pk = (:\w+) AND sk BETWEEN (:\w+) AND (:\w+)$/.exec(input.KeyConditionExpression ?? '') ?? [];
    const values = input.ExpressionAttributeValues ?? {};
    const found = [...items.values()].filter((item) => item['pk'] === values[pk] && item['sk'] >= values[from] && item['sk'] <= values[to]);
    return { Items: structuredClone(found.sort((a, b) => String(a['sk']).localeCompare(String(b['sk'])))) };
  });
  ddb.on(DeleteCommand).callsFake((input: { Key: Item }) => {
    items.delete(id(input.Key));
    return {};
  });
  ddb.on(UpdateCommand).callsFake((input: UpdateCommandInput) => {
    const key = id(input.Key);
    if (input.ConditionExpression?.startsWith('attribute_exists(pk)') && !items.has(key)) throw conditionalCheckFailed();
    const item = applyUpdate(structuredClone(items.get(key) ?? { ...input.Key }), input);
    items.set(key, item);
    return input.ReturnValues === 'ALL_NEW' ? { Attributes: structuredClone(item) } : {};
  });
  return items;
}

/** Applies an UpdateExpression of the adapter's form (SET #a = :v, ... REMOVE #b, ...) to an item. */
function applyUpdate(item: Item, input: UpdateCommandInput): Item {
  const [, sets = '', removes = ''] = /^(?:SET (.*?))?(?: ?REMOVE (.*))?$/.exec(input.UpdateExpression ?? '') ?? [];
  const names = input.ExpressionAttributeNames ?? {};
  const values = input.ExpressionAttributeValues ?? {};
  for (const clause of sets ? sets.split(', ') : []) {
    const [name = '', value = ''] = clause.split(' = ');
    item[names[name] ?? name] = structuredClone(values[value]);
  }
  for (const name of removes ? removes.split(', ') : []) delete item[names[name] ?? name];
  return item;
}

beforeEach(() => {
  ddb.reset();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('updateParts', () => {
  it('sets and removes attributes by their stored names, each through a placeholder (status is a reserved word)', () => {
    const parts = updateParts({ status: 'running', attempts: 2, maxAttempts: 7, remove: ['leaseUntil', 'nextAttemptAt'] }, {});
    expect(parts).toEqual({
      UpdateExpression: 'SET #status = :set_status, #attempts = :set_attempts, #max_attempts = :set_max_attempts REMOVE #lease_until, #next_attempt_at',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeNames: { '#status': 'status', '#attempts': 'attempts', '#max_attempts': 'max_attempts', '#lease_until': 'lease_until', '#next_attempt_at': 'next_attempt_at' },
      ExpressionAttributeValues: { ':set_status': 'running', ':set_attempts': 2, ':set_max_attempts': 7 },
    });
    expectPlaceholdersMatch(parts);
  });

  it('writes instants as ISO-8601 text, in set values and in conditions alike', () => {
    const at = Date.parse('2026-11-28T18:19:54.024Z');
    const parts = updateParts(
      { nextAttemptAt: at, notifyLeaseUntil: at + 1000 },
      { expect: { leaseUntil: at - 1000, notifyLeaseUntil: at + 5 }, leaseFree: { lease: 'notifyLeaseUntil', now: at } },
    );
    expect(parts.ExpressionAttributeValues).toEqual({
      ':set_next_attempt_at': '2026-11-28T18:19:54.024Z',
      ':set_notify_lease_until': '2026-11-28T18:19:55.024Z',
      ':expect_leaseUntil': '2026-11-28T18:19:53.024Z',
      ':expect_notifyLeaseUntil': '2026-11-28T18:19:54.029Z',
      ':now': '2026-11-28T18:19:54.024Z',
    });
    expect(parts.ConditionExpression).toBe(
      'attribute_exists(pk) AND #lease_until = :expect_leaseUntil AND #notify_lease_until = :expect_notifyLeaseUntil AND (attribute_not_exists(#notify_lease_until) OR #notify_lease_until <= :now)',
    );
    expectPlaceholdersMatch(parts);
  });

  it('does not remove a field that the same change sets, and skips undefined values', () => {
    const parts = updateParts({ nextAttemptAt: 5, leaseUntil: undefined, remove: ['nextAttemptAt', 'leaseUntil'] }, {});
    expect(parts.UpdateExpression).toBe('SET #next_attempt_at = :set_next_attempt_at REMOVE #lease_until');
    expect(parts.ExpressionAttributeValues).toEqual({ ':set_next_attempt_at': new Date(5).toISOString() });
    expectPlaceholdersMatch(parts);
  });

  it('requires the job to exist, and expects values or absent attributes', () => {
    const parts = updateParts({ status: 'started' }, { expect: { status: 'accepted', attempts: 0, leaseUntil: undefined, notified: 'no' } });
    expect(parts.ConditionExpression).toBe('attribute_exists(pk) AND #status = :expect_status AND #attempts = :expect_attempts AND attribute_not_exists(#lease_until) AND #notified = :expect_notified');
    expect(parts.ExpressionAttributeValues).toEqual({ ':set_status': 'started', ':expect_status': 'accepted', ':expect_attempts': 0, ':expect_notified': 'no' });
    expectPlaceholdersMatch(parts);
  });

  it('turns statusIn into an IN clause and leaseFree into "absent or expired"', () => {
    const parts = updateParts({ status: 'failed' }, { statusIn: ['accepted', 'started'], leaseFree: { lease: 'leaseUntil', now: 0 } });
    expect(parts.ConditionExpression).toBe('attribute_exists(pk) AND #status IN (:status_0, :status_1) AND (attribute_not_exists(#lease_until) OR #lease_until <= :now)');
    expect(parts.ExpressionAttributeValues).toMatchObject({ ':status_0': 'accepted', ':status_1': 'started', ':now': '1970-01-01T00:00:00.000Z' });
    expectPlaceholdersMatch(parts);
  });

  it('gives no ExpressionAttributeValues when there are none (DynamoDB refuses an empty map)', () => {
    const parts = updateParts({ remove: ['sweep'] }, {});
    expect(parts).toEqual({ UpdateExpression: 'REMOVE #sweep', ConditionExpression: 'attribute_exists(pk)', ExpressionAttributeNames: { '#sweep': 'sweep' } });
    expectPlaceholdersMatch(parts);
  });

  it('no write removes the request beside the state, not even the one that makes the job final: a replay sends it again', () => {
    for (const status of ['started', 'running', 'completed', 'failed', 'cancelled'] as const) expect(updateParts({ status }, {}).UpdateExpression).toBe('SET #status = :set_status');
  });

  it('stores an output\'s long body and headers brotli-packed with their compression named, a short one as text', () => {
    const long = JSON.stringify({ items: Array.from({ length: 40 }, (_, i) => ({ sku: `SKU-${i}`, quantity: 1, price: 1999 })) });
    const headers = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`x-header-${i}`, 'application/json; charset=utf-8']));
    const output: AttemptOutput = { started: job.created, durationMs: 5, statusCode: 200, headers, body: long, bodyEncoding: 'utf8', bodyBytes: long.length, truncated: false };
    const packed = updateParts({ output, history: [] }, {}).ExpressionAttributeValues?.[':set_output'] as Item;
    expect(packed).toMatchObject({ statusCode: 200, body: expect.any(Uint8Array), bodyCompression: 'br', headers: expect.any(Uint8Array), headersCompression: 'br' });
    const short = updateParts({ output: { ...output, headers: { a: 'b' }, body: 'ok' }, history: [] }, {}).ExpressionAttributeValues?.[':set_output'] as Item;
    // bodyEncoding utf8 and truncated false are left out, and read back; this bodyBytes is not the kept text's length, so it stays.
    expect(short).toEqual({ started: job.created, durationMs: 5, statusCode: 200, headers: { a: 'b' }, body: 'ok', bodyBytes: long.length });
  });
});

describe('DynamoJobStore.create and remove', () => {
  it('a job that enters no index at submit is one PutItem: its request, with the state as submitted beside it', async () => {
    emulatedTable();
    await store().create(job, request);
    expect(sent()).toEqual(['PutCommand']);
    const [{ Item: own = {}, ConditionExpression } = {}] = inputs(PutCommand);
    expect(ConditionExpression).toBe('attribute_not_exists(pk)');
    expect(own).toMatchObject({ pk: jobId, sk: 'request', headers: request.headers, body: request.body, created: job.created, status: 'accepted', attempts: 0, expiresAt: job.expiresAt });
    expect(dynamoItemSize(own)).toBeLessThanOrEqual(1024);
  });

  it('a job that enters an index at submit is PutItem-ed as its request\'s item, then its state\'s, which carries no request', async () => {
    emulatedTable();
    await store().create(indexed, request);
    expect(sent()).toEqual(['PutCommand', 'PutCommand']);
    const [{ Item: own = {} } = {}, { Item: state = {} } = {}] = inputs(PutCommand);
    expect(own).toEqual({ pk: jobId, sk: 'request', headers: request.headers, body: request.body, expiresAt: job.expiresAt });
    expect(state).toMatchObject({ pk: jobId, sk: 'job', created: job.created, status: 'accepted', attempts: 0, sweep: '8', expiresAt: job.expiresAt });
    expect(state).not.toHaveProperty('request');
    expect(dynamoItemSize(state)).toBeLessThanOrEqual(1024);
  });

  it('an output written without its history (the core never does) reads the history first, so that a last line stored short is written back whole', async () => {
    emulatedTable();
    const output: AttemptOutput = { started: job.created, durationMs: 5, statusCode: 200, headers: {}, body: 'ok', bodyEncoding: 'utf8', bodyBytes: 2, truncated: false };
    const history = [{ attempt: 1, started: job.created, durationMs: 5, statusCode: 200 }];
    await store().create(job, request);
    await store().update(jobId, { output, history }, {});
    await store().update(jobId, { output: { started: job.created, durationMs: 0, error: 'abandoned' } }, {});
    expect(await store().get(jobId)).toMatchObject({ history, output: { error: 'abandoned' } });
  });

  it('a larger request is PutItem-ed in its own item BEFORE the job\'s state item, and never with BatchWriteItem', async () => {
    emulatedTable();
    await store().create(indexed, { ...request, body: noise });
    expect(sent()).toEqual(['PutCommand', 'PutCommand']);
    expect(ddb).not.toHaveReceivedCommand(BatchWriteCommand);
    expect(ddb).toHaveReceivedNthCommandWith(PutCommand, 1, { TableName: table, Item: { pk: jobId, sk: 'request', headers: request.headers, body: expect.any(Uint8Array), bodyCompression: 'br', expiresAt: job.expiresAt } });
    expect(ddb).toHaveReceivedNthCommandWith(PutCommand, 2, { TableName: table, Item: expect.objectContaining({ pk: jobId, sk: 'job', status: 'accepted' }) });
    expect(inputs(PutCommand)[1]?.Item).not.toHaveProperty('request');
  });

  it('each item is put only where none is; one that is there already (this put, retried or landing late) is left as it is', async () => {
    ddb.on(PutCommand).rejects(new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} }));
    await expect(store().create(indexed, { ...request, body: noise })).resolves.toBeUndefined();
    await expect(store().create(job, { ...request, body: noise })).resolves.toBeUndefined();
    expect(inputs(PutCommand).map((input) => input.ConditionExpression)).toEqual(['attribute_not_exists(pk)', 'attribute_not_exists(pk)', 'attribute_not_exists(pk)']);
  });

  it('when the request item cannot be written, the job item is never written', async () => {
    const failure = throttled();
    ddb.on(PutCommand).rejects(failure);
    await expect(store().create(indexed, { ...request, body: noise })).rejects.toBe(failure);
    expect(ddb).toHaveReceivedCommandExactlyOnceWith(PutCommand, { Item: expect.objectContaining({ sk: 'request' }) });
  });

  it('remove deletes the job item first, then its request item', async () => {
    ddb.on(DeleteCommand).resolves({});
    await store().remove(jobId);
    expect(sent()).toEqual(['DeleteCommand', 'DeleteCommand']);
    expect(inputs(DeleteCommand)).toEqual([
      { TableName: table, Key: { pk: jobId, sk: 'job' } },
      { TableName: table, Key: { pk: jobId, sk: 'request' } },
    ]);
  });

  it('remove does not delete the request when deleting the job failed: no job is left without its request', async () => {
    const failure = throttled();
    ddb.on(DeleteCommand).rejects(failure);
    await expect(store().remove(jobId)).rejects.toBe(failure);
    expect(ddb).toHaveReceivedCommandExactlyOnceWith(DeleteCommand, { Key: { pk: jobId, sk: 'job' } });
  });
});

describe('DynamoJobStore reads and writes', () => {
  it('get reads the job item consistently and turns stored instants back into epoch ms; an unknown job is undefined', async () => {
    ddb.on(GetCommand).resolvesOnce({}).resolves({ Item: { pk: jobId, sk: 'job', ...acceptedJobItem(), status: 'running', next_attempt_at: '2026-01-01T00:00:01.000Z', sweep: '8' } });
    expect(await store().get(jobId)).toBeUndefined();
    expect(await store().get(jobId)).toEqual({ ...job, status: 'running', nextAttemptAt: Date.parse('2026-01-01T00:00:01.000Z'), sweep: '8' });
    expect(ddb).toHaveReceivedCommandWith(GetCommand, { TableName: table, Key: { pk: jobId, sk: 'job' }, ConsistentRead: true });
  });

  it('get of a job not yet tried reads its state item, then its request item, whose submitted state is the job', async () => {
    emulatedTable();
    await store().create(job, request);
    ddb.resetHistory();
    expect(await store().get(jobId)).toEqual(job);
    expect(inputs(GetCommand).map((input) => [input.Key, input.ConsistentRead])).toEqual([
      [{ pk: jobId, sk: 'job' }, true],
      [{ pk: jobId, sk: 'request' }, true],
    ]);
    expect(await store().getWithRequest(jobId)).toEqual({ job, request });
    expect(await store().attempts(jobId)).toEqual([]);
  });

  it('update is one conditional UpdateItem on the job item asking nothing back; lease is the same write returning the job as written', async () => {
    const items = emulatedTable();
    await store().create(indexed, request);
    ddb.resetHistory();
    await store().update(jobId, { status: 'started' }, {});
    const at = Date.parse('2026-01-01T00:00:00.000Z');
    expect(await store().lease(jobId, { attempts: 1, notifyLeaseUntil: at }, { expect: { attempts: 0 } })).toEqual({ ...indexed, status: 'started', attempts: 1, notifyLeaseUntil: at });
    expect(inputs(UpdateCommand)).toEqual([
      { TableName: table, Key: { pk: jobId, sk: 'job' }, ReturnValues: 'NONE', ...updateParts({ status: 'started' }, {}) },
      { TableName: table, Key: { pk: jobId, sk: 'job' }, ReturnValues: 'ALL_NEW', ...updateParts({ attempts: 1, notifyLeaseUntil: at }, { expect: { attempts: 0 } }) },
    ]);
    expect(sent()).toEqual(['UpdateCommand', 'UpdateCommand']);
    expect(items.get(`${jobId}|job`)).toMatchObject({ status: 'started', notify_lease_until: '2026-01-01T00:00:00.000Z' });
  });

  it('the first write of a job not yet tried (a cancel), refused as an update, makes its state item: a put where none is, from the submitted state and the change, its condition judged of that state', async () => {
    const items = emulatedTable();
    await store().create(job, request);
    ddb.resetHistory();
    await store().update(jobId, { status: 'cancelled', lastUpdate: '2026-01-01T00:00:05.000Z' }, { statusIn: ['accepted', 'started'] });
    expect(sent()).toEqual(['UpdateCommand', 'QueryCommand', 'PutCommand']);
    expect(inputs(PutCommand)[0]).toEqual({ TableName: table, Item: expect.objectContaining({ pk: jobId, sk: 'job', status: 'cancelled' }), ConditionExpression: 'attribute_not_exists(pk)' });
    expect(items.get(`${jobId}|job`)).not.toHaveProperty('headers');
    expect(await store().get(jobId)).toEqual({ ...job, status: 'cancelled', lastUpdate: '2026-01-01T00:00:05.000Z' });
    // The request item is never written again: its state stays as submitted, and is no longer read.
    expect(items.get(`${jobId}|request`)).toMatchObject({ status: 'accepted' });
    // From now on, one UpdateItem.
    ddb.resetHistory();
    await store().update(jobId, { status: 'failed' }, { statusIn: ['cancelled'] });
    expect(sent()).toEqual(['UpdateCommand']);
  });

  it('a first write whose condition does not hold of the submitted state writes nothing more, and is refused', async () => {
    emulatedTable();
    await store().create(job, request);
    ddb.resetHistory();
    await expect(store().update(jobId, { status: 'running' }, { expect: { attempts: 3 } })).rejects.toBeInstanceOf(ConditionFailed);
    expect(ddb).not.toHaveReceivedCommand(PutCommand);
  });

  it('a first write that another one beat to the state item (the put refused) is made as an update of the state item that one made', async () => {
    const items = emulatedTable();
    await store().create(job, request);
    expect(ddb.commandCalls(PutCommand)).toHaveLength(1);
    // The cancel's state item lands between this take's read and its put.
    ddb.on(PutCommand).callsFake((input: PutCommandInput) => {
      items.set(`${jobId}|job`, { ...structuredClone(input.Item ?? {}), status: 'cancelled' });
      throw conditionalCheckFailed();
    });
    // (This table does not judge the update's own condition: DynamoDB would refuse it here.)
    await store().take(jobId, { status: 'started', attempts: 1 }, { statusIn: ['accepted'] });
    expect(sent().slice(1)).toEqual(['QueryCommand', 'PutCommand', 'UpdateCommand']);
    expect(inputs(UpdateCommand)[0]).toMatchObject({ Key: { pk: jobId, sk: 'job' }, ...updateParts({ status: 'started', attempts: 1 }, { statusIn: ['accepted'] }) });
  });

  it('take reads the state and request items in one consistent Query, then writes: the lease\'s put for a job not yet tried, an update after', async () => {
    emulatedTable();
    await store().create(job, { ...request, body: noise });
    ddb.resetHistory();
    expect(await store().take(jobId, { status: 'started', attempts: 1 }, { statusIn: ['accepted'] })).toEqual({ job: { ...job, status: 'started', attempts: 1 }, request: { ...request, body: noise } });
    expect(sent()).toEqual(['QueryCommand', 'PutCommand']);
    expect(inputs(QueryCommand)[0]).toMatchObject({ TableName: table, KeyConditionExpression: 'pk = :pk AND sk BETWEEN :job AND :request', ConsistentRead: true });
    ddb.resetHistory();
    expect(await store().take(jobId, { status: 'running', attempts: 2 }, { expect: { attempts: 1 } })).toEqual({ job: { ...job, status: 'running', attempts: 2 }, request: { ...request, body: noise } });
    expect(sent()).toEqual(['QueryCommand', 'UpdateCommand']);
  });

  it('take of a job with neither item (its message came first, or its submit failed) is refused with nothing written', async () => {
    emulatedTable();
    await expect(store().take(jobId, { status: 'started' }, {})).rejects.toBeInstanceOf(ConditionFailed);
    expect(sent()).toEqual(['QueryCommand']);
  });

  it('take returns the request beside an older state item from the write\'s ALL_NEW answer', async () => {
    const older = { pk: jobId, sk: 'job', ...acceptedJobItem(), request: { headers: request.headers, body: request.body } };
    ddb.on(QueryCommand).resolves({ Items: [older] });
    ddb.on(UpdateCommand).resolves({ Attributes: { ...older, status: 'started', attempts: 1, lease_until: '2026-01-01T00:00:00.000Z' } });
    expect(await store().take(jobId, { status: 'started', attempts: 1 }, {})).toEqual({
      job: { ...job, status: 'started', attempts: 1, leaseUntil: Date.parse('2026-01-01T00:00:00.000Z') },
      request,
    });
    expect(ddb).toHaveReceivedCommandWith(UpdateCommand, { ReturnValues: 'ALL_NEW' });
    expect(ddb).not.toHaveReceivedCommand(GetCommand);
  });

  it('take of a job whose request is lost returns the job alone', async () => {
    const items = emulatedTable();
    await store().create(indexed, request);
    items.delete(`${jobId}|request`);
    expect(await store().take(jobId, { status: 'running' }, {})).toEqual({ job: { ...indexed, status: 'running' } });
  });

  it('a job and its request come back as they went in, whichever way they were stored, through take, lease and get', async () => {
    const json = JSON.stringify({ items: Array.from({ length: 40 }, (_, i) => ({ sku: `SKU-${i}`, quantity: 1, price: 1999 })) });
    const manyHeaders = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`X-Header-${i}`, `value ${i} for the target`]));
    for (const submitted of [job, indexed]) {
      for (const [headers, body] of [[request.headers, null], [request.headers, ''], [request.headers, json], [request.headers, noise], [manyHeaders, 'ünïcode ✓']] as const) {
        ddb.reset();
        const items = emulatedTable();
        const asked = { ...request, headers, body };
        await store().create(submitted, asked);
        expect(await store().getWithRequest(jobId)).toEqual({ job: submitted, request: asked });
        const leaseUntil = Date.parse('2026-01-01T00:00:10.000Z');
        expect(await store().take(jobId, { status: 'started', attempts: 1, leaseUntil }, {})).toEqual({ job: { ...submitted, status: 'started', attempts: 1, leaseUntil }, request: asked });
        const output: AttemptOutput = { started: job.created, durationMs: 5, statusCode: 200, headers: manyHeaders, body: json, bodyEncoding: 'utf8', bodyBytes: json.length, truncated: false };
        const history = [{ attempt: 1, started: job.created, durationMs: 5, statusCode: 200 }];
        const settled = { ...submitted, status: 'completed' as const, attempts: 1, output, history };
        expect(await store().lease(jobId, { status: 'completed', output, history, remove: ['leaseUntil'] }, {})).toEqual(settled);
        expect(await store().get(jobId)).toEqual(settled);
        expect(await store().getWithRequest(jobId)).toEqual({ job: settled, request: asked });
        // Kept in its own item: a replay reads it.
        expect(items.get(`${jobId}|request`)).toBeDefined();
      }
    }
  });

  it('turns a ConditionalCheckFailedException into ConditionFailed, and passes any other error through unchanged', async () => {
    const refusal = conditionalCheckFailed();
    ddb.on(UpdateCommand).rejects(refusal);
    ddb.on(QueryCommand).resolves({ Items: [{ pk: jobId, sk: 'job', ...acceptedJobItem() }] });
    for (const write of [() => store().update(jobId, {}, {}), () => store().lease(jobId, {}, {}), () => store().take(jobId, {}, {})]) {
      const error = await write().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConditionFailed);
      expect((error as Error).cause).toBe(refusal);
    }
    const failure = throttled();
    ddb.on(UpdateCommand).rejects(failure);
    await expect(store().update(jobId, { status: 'failed' }, {})).rejects.toBe(failure);
    const plain = new Error('socket hang up');
    ddb.on(UpdateCommand).rejects(plain);
    await expect(store().take(jobId, {}, {})).rejects.toBe(plain);
  });
});

/** A job item of `job` in the stored layout. */
function acceptedJobItem(): Item {
  return {
    clientId: job.clientId,
    created: job.created,
    lastUpdate: job.lastUpdate,
    service: job.service,
    methodtype: job.methodtype,
    callback: null,
    status: job.status,
    attempts: job.attempts,
    max_attempts: job.maxAttempts,
    timeout_ms: job.timeoutMs,
    output: null,
    history: [],
    notified: job.notified,
    notifyoutput: null,
    notify_attempts: 0,
    callback_max_attempts: 5,
    expiresAt: job.expiresAt,
  };
}

describe('DynamoJobStore.unsettled', () => {
  const index = tables.jobs.unsettledIndex;
  const created = '2026-01-01T00:00:00.000Z';
  /** An index entry as DynamoDB returns it for the adapter's projection. */
  const entry = (pk: string, fields: Item = {}): Item => ({ pk, created, status: 'running', notified: 'no', lastUpdate: created, next_attempt_at: '2026-01-01T00:00:05.000Z', ...fields });
  /** What the walk of one shard yields. */
  async function walk(shard: string, range?: Parameters<ReturnType<typeof store>['unsettled']>[1]) {
    const found = [];
    for await (const unsettled of store().unsettled(shard, range)) found.push(unsettled);
    return found;
  }

  it('queries one shard of the index page by page for the attributes it projects, and reads no job', async () => {
    const pages = [[entry('3a', { lease_until: '2026-01-01T00:01:00.000Z' })], [entry('3b', { status: 'completed', notified: 'no', notify_lease_until: '2026-01-01T00:02:00.000Z', next_notify_at: '2026-01-01T00:03:00.000Z' })]];
    // Each query as it was sent: the SDK's paginator sends its one input again, its start key moved on.
    const asSent: Array<{ ExclusiveStartKey?: Item; ExpressionAttributeNames?: Record<string, string> }> = [];
    ddb.on(QueryCommand).callsFake((input: { ExclusiveStartKey?: Item }) => {
      asSent.push(structuredClone(input));
      return input.ExclusiveStartKey ? { Items: pages[1] } : { Items: pages[0], LastEvaluatedKey: { pk: '3a', sk: 'job', sweep: '3', created } };
    });

    expect(await walk('3')).toStrictEqual([
      { jobId: '3a', created, status: 'running', notified: 'no', lastUpdate: created, nextAttemptAt: Date.parse('2026-01-01T00:00:05.000Z'), leaseUntil: Date.parse('2026-01-01T00:01:00.000Z') },
      {
        jobId: '3b',
        created,
        status: 'completed',
        notified: 'no',
        lastUpdate: created,
        nextAttemptAt: Date.parse('2026-01-01T00:00:05.000Z'),
        notifyLeaseUntil: Date.parse('2026-01-01T00:02:00.000Z'),
        nextNotifyAt: Date.parse('2026-01-01T00:03:00.000Z'),
      },
    ]);
    expect(sent()).toEqual(['QueryCommand', 'QueryCommand']);
    const queries = asSent;
    expect(queries[0]).toEqual({
      TableName: table,
      IndexName: index.name,
      KeyConditionExpression: '#shard = :shard',
      ProjectionExpression: '#pk, #created, #status, #notified, #lastUpdate, #lease_until, #next_attempt_at, #notify_lease_until, #next_notify_at',
      ExpressionAttributeNames: {
        '#shard': 'sweep',
        '#pk': 'pk',
        '#created': 'created',
        '#status': 'status',
        '#notified': 'notified',
        '#lastUpdate': 'lastUpdate',
        '#lease_until': 'lease_until',
        '#next_attempt_at': 'next_attempt_at',
        '#notify_lease_until': 'notify_lease_until',
        '#next_notify_at': 'next_notify_at',
      },
      ExpressionAttributeValues: { ':shard': '3' },
      ExclusiveStartKey: undefined,
    });
    // Every attribute it asks for is one the index carries: none would come back from a table read.
    const carried: readonly string[] = [tables.jobs.partitionKey, index.partitionKey, index.sortKey, ...index.projected];
    expect(Object.values(queries[0]?.ExpressionAttributeNames ?? {}).filter((name) => !carried.includes(name))).toEqual([]);
    expect(queries[1]?.ExclusiveStartKey).toEqual({ pk: '3a', sk: 'job', sweep: '3', created });
    for (const query of queries) expectPlaceholdersMatch(query);
  });

  it('goes on past `after` (an index key of the entry) and ends with `upTo`\'s entry, asking for no page beyond it', async () => {
    const after = { jobId: '7-after', created: '2026-01-01T00:00:01.000Z' };
    const upTo = { jobId: '7-last', created: '2026-01-01T00:00:09.000Z' };
    ddb.on(QueryCommand).resolves({ Items: [entry('7-x'), entry(upTo.jobId, { created: upTo.created }), entry('7-same-instant', { created: upTo.created })], LastEvaluatedKey: { pk: '7-same-instant', sk: 'job', sweep: '7', created: upTo.created } });
    expect((await walk('7', { after, upTo })).map((found) => found.jobId)).toEqual(['7-x', upTo.jobId]);
    const [query, ...more] = inputs(QueryCommand);
    expect(more).toEqual([]);
    expect(query).toMatchObject({
      KeyConditionExpression: '#shard = :shard AND #created <= :upTo',
      ExpressionAttributeValues: { ':shard': '7', ':upTo': upTo.created },
      ExclusiveStartKey: { pk: after.jobId, sk: 'job', sweep: '7', created: after.created },
    });
    expectPlaceholdersMatch(query);
  });

  it('reads an entry of a keys-only index (an earlier local DATA_DIR\'s) from its job, consistently, for the index\'s attributes alone', async () => {
    ddb.on(QueryCommand).resolves({ Items: [{ pk: 'k-1', sk: 'job', sweep: 'k', created }, { pk: 'k-gone', sk: 'job', sweep: 'k', created }] });
    ddb.on(GetCommand, { Key: { pk: 'k-1', sk: 'job' } }).resolves({ Item: entry('k-1', { status: 'accepted' }) });
    ddb.on(GetCommand, { Key: { pk: 'k-gone', sk: 'job' } }).resolves({});
    expect(await walk('k')).toStrictEqual([{ jobId: 'k-1', created, status: 'accepted', notified: 'no', lastUpdate: created, nextAttemptAt: Date.parse('2026-01-01T00:00:05.000Z') }]);
    const reads = inputs(GetCommand);
    expect(reads).toHaveLength(2);
    expect(reads[0]).toEqual({
      TableName: table,
      Key: { pk: 'k-1', sk: 'job' },
      ConsistentRead: true,
      ProjectionExpression: inputs(QueryCommand)[0]?.ProjectionExpression,
      ExpressionAttributeNames: Object.fromEntries(Object.entries(inputs(QueryCommand)[0]?.ExpressionAttributeNames ?? {}).filter(([placeholder]) => placeholder !== '#shard')),
    });
  });
});

describe('DynamoJobStore.list', () => {
  const client = '11111111111111';
  const at = (i: number) => `2025-01-01T00:00:${String(59 - i).padStart(2, '0')}.000Z`;
  /** A listing entry of `ids`, created at second 59 - i. */
  const entry = (i: number, ids: string[]) => ({ pk: `jobs#${client}`, sk: `${at(i)}#${ids[0]}`, clientId: client, created: at(i), jobs: ids, expiresAt: 1_738_000_000 });
  const stored = (i: number) => ({ pk: `job-${i}`, sk: 'job', ...Object.fromEntries(Object.entries(acceptedJob({ jobId: `job-${i}`, clientId: client })).filter(([field]) => field !== 'jobId')) });

  it('reads the client\'s listing entries newest first, a few at first, then the jobs they name in one BatchGetItem, kept in the entries\' order; the cursor goes on inside an entry', async () => {
    const batch = entry(0, ['job-0', 'job-1', 'job-2']);
    ddb.on(QueryCommand).resolves({ Items: [batch], LastEvaluatedKey: { pk: batch.pk, sk: batch.sk } });
    // The batch answers in an order of its own.
    ddb.on(BatchGetCommand).resolves({ Responses: { [table]: [stored(1), stored(0)] } });
    const page = await store().list(client, { limit: 2 });
    expect(page.jobs.map((job) => job.jobId)).toEqual(['job-0', 'job-1']);
    expect(inputs(QueryCommand)).toEqual([{ TableName: table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `jobs#${client}` }, ScanIndexForward: false, Limit: 3 }]);
    expect(inputs(BatchGetCommand)).toEqual([{ RequestItems: { [table]: { Keys: [{ pk: 'job-0', sk: 'job' }, { pk: 'job-1', sk: 'job' }] } } }]);
    // The cursor names the entry and how many of its jobs were passed: the next page reads from that entry on, and skips them.
    ddb.reset();
    ddb.on(QueryCommand).resolves({ Items: [batch, entry(1, ['job-3'])] });
    ddb.on(BatchGetCommand).resolves({ Responses: { [table]: [stored(2), stored(3)] } });
    const next = await store().list(client, { limit: 2, cursor: page.nextCursor ?? '' });
    expect(inputs(QueryCommand)[0]).toMatchObject({ KeyConditionExpression: 'pk = :pk AND sk <= :from', ExpressionAttributeValues: { ':pk': `jobs#${client}`, ':from': batch.sk } });
    expect(inputs(BatchGetCommand)[0]?.RequestItems?.[table]?.Keys).toEqual([{ pk: 'job-2', sk: 'job' }, { pk: 'job-3', sk: 'job' }]);
    expect(next).toEqual({ jobs: [expect.objectContaining({ jobId: 'job-2' }), expect.objectContaining({ jobId: 'job-3' })], nextCursor: null });
  });

  it('asks again for the keys a BatchGetItem left unprocessed, after a growing wait, a few times at most; then fails', async () => {
    const waits: number[] = [];
    const patient = new DynamoJobStore(documents, table, { sleep: async (ms) => void waits.push(ms) });
    ddb.on(QueryCommand).resolves({ Items: [entry(0, ['job-0']), entry(1, ['job-1'])] });
    ddb.on(BatchGetCommand)
      .resolvesOnce({ Responses: { [table]: [stored(1)] }, UnprocessedKeys: { [table]: { Keys: [{ pk: 'job-0', sk: 'job' }] } } })
      .resolvesOnce({ Responses: { [table]: [] }, UnprocessedKeys: { [table]: { Keys: [{ pk: 'job-0', sk: 'job' }] } } })
      .resolves({ Responses: { [table]: [stored(0)] } });
    expect((await patient.list(client, { limit: 2 })).jobs.map((job) => job.jobId)).toEqual(['job-0', 'job-1']);
    expect(inputs(BatchGetCommand).map((input) => input.RequestItems?.[table]?.Keys)).toEqual([
      [{ pk: 'job-0', sk: 'job' }, { pk: 'job-1', sk: 'job' }],
      [{ pk: 'job-0', sk: 'job' }],
      [{ pk: 'job-0', sk: 'job' }],
    ]);
    expect(waits).toEqual([25, 50]);

    ddb.on(BatchGetCommand).resolves({ Responses: { [table]: [] }, UnprocessedKeys: { [table]: { Keys: [{ pk: 'job-0', sk: 'job' }] } } });
    await expect(patient.list(client, { limit: 1 })).rejects.toThrow(/unprocessed after 5 tries/);
  });

  it('with a status, reads the entries on as the jobs they held say are needed, and the jobs in chunks (the page\'s size, then as many as it has looked at), 100 at most', async () => {
    const entries = Array.from({ length: 150 }, (_, i) => ({ ...entry(0, [`job-${String(i).padStart(3, '0')}`]), sk: `${at(0)}#job-${String(999 - i)}` }));
    ddb.on(QueryCommand).callsFake((input: { Limit: number; ExpressionAttributeValues: Record<string, string> }) => {
      const from = input.ExpressionAttributeValues[':from'];
      const left = entries.filter((item) => from === undefined || item.sk < from);
      const items = left.slice(0, input.Limit);
      const last = items.at(-1);
      return { Items: items, ...(left.length > input.Limit && last ? { LastEvaluatedKey: { pk: last.pk, sk: last.sk } } : {}) };
    });
    ddb.on(BatchGetCommand).callsFake((input: { RequestItems: Record<string, { Keys: Item[] }> }) => ({
      Responses: { [table]: (input.RequestItems[table]?.Keys ?? []).map((key) => ({ ...stored(0), pk: key['pk'], status: 'completed' })) },
    }));
    const page = await store().list(client, { status: 'failed', limit: 10 });
    expect(page.jobs).toEqual([]);
    expect(inputs(QueryCommand).map((input) => input.Limit)).toEqual([4, 7, 10, 20, 40, 20]);
    expect(inputs(BatchGetCommand).map((input) => input.RequestItems?.[table]?.Keys?.length)).toEqual([10, 10, 20, 40, 20]);
    expect(page.nextCursor).toEqual(expect.any(String));
  });

  it('writes a listing entry as one PutItem: the client\'s partition, `created` and the first job\'s id as its sort key, the ids in order', async () => {
    ddb.on(PutCommand).resolves({});
    await store().enlist(client, at(0), ['job-0', 'job-1'], 1_738_000_000);
    expect(inputs(PutCommand)).toEqual([{ TableName: table, Item: entry(0, ['job-0', 'job-1']) }]);
  });
});

describe('DynamoSweepStateStore', () => {
  const now = Date.parse('2026-01-01T00:00:00.000Z');
  const key = { pk: 'sweeper', sk: 'state' };
  const sweeps = () => new DynamoSweepStateStore(documents, table);

  it('takes the lease in one conditional write that returns the state the last run left', async () => {
    ddb.on(UpdateCommand).resolves({ Attributes: { ...key, resume_shard: '9', resume_after_created: '2025-12-31T23:00:00.000Z', resume_after_job: '9abc', last_run_unfinished: true, lease_holder: 'run-2' } });
    expect(await sweeps().claim('run-2', now, now + 75_000)).toEqual({ state: { resumeAt: { shard: '9', after: { created: '2025-12-31T23:00:00.000Z', jobId: '9abc' } }, unfinished: true } });
    const [write] = inputs(UpdateCommand);
    expect(write).toEqual({
      TableName: table,
      Key: key,
      UpdateExpression: 'SET lease_holder = :run, lease_until = :until',
      ConditionExpression: 'attribute_not_exists(lease_until) OR lease_until <= :now',
      ExpressionAttributeValues: { ':run': 'run-2', ':until': '2026-01-01T00:01:15.000Z', ':now': '2026-01-01T00:00:00.000Z' },
      ReturnValues: 'ALL_NEW',
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    });
    expectPlaceholdersMatch(write);
  });

  it('a first run finds no state: it starts at the first shard', async () => {
    ddb.on(UpdateCommand).resolves({ Attributes: { ...key, lease_holder: 'run-1', lease_until: '2026-01-01T00:01:15.000Z' } });
    expect(await sweeps().claim('run-1', now, now + 75_000)).toEqual({ state: { unfinished: false } });
  });

  it('a lease held says by whom and until when, as the refusal tells; a refusal without the item still says held', async () => {
    ddb.on(UpdateCommand).rejectsOnce(conditionalCheckFailed({ ...key, lease_holder: 'run-1', lease_until: '2026-01-01T00:00:30.000Z' })).rejectsOnce(conditionalCheckFailed());
    expect(await sweeps().claim('run-2', now, now + 75_000)).toEqual({ held: { heldBy: 'run-1', heldUntil: Date.parse('2026-01-01T00:00:30.000Z') } });
    expect(await sweeps().claim('run-2', now, now + 75_000)).toEqual({ held: {} });
    ddb.on(UpdateCommand).rejects(throttled());
    await expect(sweeps().claim('run-2', now, now + 75_000)).rejects.toBeInstanceOf(ProvisionedThroughputExceededException);
  });

  it('saves where the next run starts and lets the lease go, in one write conditional on holding it', async () => {
    const items = emulatedTable();
    items.set('sweeper|state', { ...key, lease_holder: 'run-3', lease_until: '2026-01-01T00:01:15.000Z', resume_shard: '2', resume_after_created: 'x', resume_after_job: 'y' });
    expect(await sweeps().release('run-3', { resumeAt: { shard: 'c', after: { created: '2025-12-31T22:00:00.000Z', jobId: 'c123' } }, unfinished: true }, now)).toBe(true);
    expect(items.get('sweeper|state')).toEqual({ ...key, resume_shard: 'c', resume_after_created: '2025-12-31T22:00:00.000Z', resume_after_job: 'c123', last_run_unfinished: true, last_run: 'run-3', last_saved: '2026-01-01T00:00:00.000Z' });
    expect(inputs(UpdateCommand)[0]).toMatchObject({ Key: key, ConditionExpression: 'lease_holder = :run', ExpressionAttributeValues: { ':run': 'run-3' } });

    items.set('sweeper|state', { ...items.get('sweeper|state'), lease_holder: 'run-4', lease_until: '2026-01-01T00:02:15.000Z' });
    expect(await sweeps().release('run-4', { resumeAt: { shard: '5' }, unfinished: false }, now + 60_000)).toBe(true);
    expect(items.get('sweeper|state')).toEqual({ ...key, resume_shard: '5', last_run_unfinished: false, last_run: 'run-4', last_saved: '2026-01-01T00:01:00.000Z' });
    for (const write of inputs(UpdateCommand)) expectPlaceholdersMatch(write);
  });

  it('a run whose lease another run took over saves nothing and says so', async () => {
    ddb.on(UpdateCommand).rejectsOnce(conditionalCheckFailed()).rejects(throttled());
    expect(await sweeps().release('run-3', { unfinished: false }, now)).toBe(false);
    await expect(sweeps().release('run-3', { unfinished: false }, now)).rejects.toBeInstanceOf(ProvisionedThroughputExceededException);
  });
});

describe('DynamoJobStore idempotency keys', () => {
  const now = Date.parse('2026-01-01T00:00:00.000Z');
  const claim: IdempotencyRecord = { jobId, answer: `{"job_id":"${jobId}"}`, state: 'pending', claimUntil: now + 30_000, expiresAt: now / 1000 + 86_400 };
  const key = { pk: 'idem#c1#order-1', sk: 'idem' };
  /** A key's item as it is stored. */
  const stored = (record: IdempotencyRecord): Item => ({ ...key, ...record, claimUntil: new Date(record.claimUntil).toISOString() });
  const other = (fields: Partial<IdempotencyRecord> = {}): IdempotencyRecord => ({ jobId: 'other-job', answer: '{"job_id":"other-job"}', state: 'done', claimUntil: now - 60_000, expiresAt: now / 1000 + 3600, ...fields });

  /**
   * DynamoDB's verdict on a condition of the forms claimIdempotent writes: clauses joined by OR,
   * each `attribute_not_exists(a)`, `a = :v`, `a < :v`, or a parenthesised AND of comparisons.
   */
  function holds(input: PutCommandInput, old: Item | undefined): boolean {
    const names = input.ExpressionAttributeNames ?? {};
    const values = input.ExpressionAttributeValues ?? {};
    const operand = (token: string): unknown => (token.startsWith(':') ? values[token] : old?.[names[token] ?? token]);
    return (input.ConditionExpression ?? '').split(' OR ').some((clause) =>
      clause
        .replace(/^\((.*)\)$/, '$1')
        .split(' AND ')
        .every((part) => {
          const absent = /^attribute_not_exists\((\S+)\)$/.exec(part);
          if (absent) return operand(absent[1] ?? '') === undefined;
          const [, left = '', operator, right = ''] = /^(\S+) (=|<) (\S+)$/.exec(part) ?? [];
          if (!operator) throw new Error(`a condition this test does not know: ${part}`);
          const [a, b] = [operand(left), operand(right)];
          if (a === undefined || b === undefined) return false;
          return operator === '=' ? a === b : (a as number) < (b as number);
        }),
    );
  }

  /** The key's item behind a conditional PutItem that refuses as DynamoDB does, with ALL_OLD when asked. */
  function keyTable(initial?: Item) {
    const items = new Map<string, Item>(initial ? [['key', initial]] : []);
    ddb.on(PutCommand).callsFake((input: PutCommandInput) => {
      const old = items.get('key');
      if (!holds(input, old)) throw conditionalCheckFailed(input.ReturnValuesOnConditionCheckFailure === 'ALL_OLD' ? old : undefined);
      items.set('key', structuredClone(input.Item ?? {}));
      return {};
    });
    return items;
  }

  const claimKey = (replacing?: string) => store().claimIdempotent('c1', 'order-1', claim, now, replacing);

  it('claims a free key with one conditional PutItem of the pending claim, asking for the old item on refusal', async () => {
    const items = keyTable();
    expect(await claimKey()).toBeUndefined();
    expect(ddb).toHaveReceivedCommandExactlyOnceWith(PutCommand, {
      TableName: table,
      Item: { ...key, jobId, answer: claim.answer, state: 'pending', claimUntil: '2026-01-01T00:00:30.000Z', expiresAt: claim.expiresAt },
      ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :now OR jobId = :jobId',
      ExpressionAttributeValues: { ':now': now / 1000, ':jobId': jobId },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    });
    expectPlaceholdersMatch(inputs(PutCommand)[0]);
    expect(items.get('key')).toEqual(stored(claim));
  });

  it('a key held by another job answers with its record, from the refusal\'s ALL_OLD item, without another read', async () => {
    const held = other();
    const items = keyTable(stored(held));
    expect(await claimKey()).toEqual(held);
    expect(ddb).not.toHaveReceivedCommand(GetCommand);
    expect(items.get('key')).toEqual(stored(held));
  });

  it('a pending claim of another job comes back as pending, with its claim deadline', async () => {
    const held = other({ state: 'pending', claimUntil: now + 5000 });
    keyTable(stored(held));
    expect(await claimKey()).toEqual(held);
  });

  it('an expired key is claimed again', async () => {
    const items = keyTable(stored(other({ expiresAt: now / 1000 - 1 })));
    expect(await claimKey()).toBeUndefined();
    expect(items.get('key')).toMatchObject({ jobId });
  });

  it('our own claim that landed unseen (the SDK retried the write) counts as ours', async () => {
    keyTable(stored(claim));
    expect(await claimKey()).toBeUndefined();
    expect(inputs(PutCommand)[0]?.ConditionExpression).toContain('jobId = :jobId');
  });

  it('replacing takes over the abandoned pending claim of that job only', async () => {
    const abandoned = other({ jobId: 'abandoned', state: 'pending', claimUntil: now - 1 });
    const items = keyTable(stored(abandoned));
    expect(await claimKey()).toEqual(abandoned);
    expect(await claimKey('abandoned')).toBeUndefined();
    expect(items.get('key')).toMatchObject({ jobId, state: 'pending' });
    expect(inputs(PutCommand)[1]).toMatchObject({
      ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :now OR jobId = :jobId OR (jobId = :replacing AND #state = :pending)',
      ExpressionAttributeNames: { '#state': 'state' },
      ExpressionAttributeValues: { ':now': now / 1000, ':jobId': jobId, ':replacing': 'abandoned', ':pending': 'pending' },
    });
    expectPlaceholdersMatch(inputs(PutCommand)[1]);
  });

  it('replacing does not take over a claim that its job settled meanwhile, nor one another job took', async () => {
    const settled = other({ jobId: 'abandoned', state: 'done' });
    keyTable(stored(settled));
    expect(await claimKey('abandoned')).toEqual(settled);
    ddb.reset();
    const taken = other({ jobId: 'someone-else', state: 'pending', claimUntil: now + 5000 });
    keyTable(stored(taken));
    expect(await claimKey('abandoned')).toEqual(taken);
  });

  it('reads the key when the refusal carries no item, and claims it again if it is gone by then', async () => {
    const held = other();
    ddb.on(PutCommand).rejects(conditionalCheckFailed());
    ddb.on(GetCommand).resolves({ Item: stored(held) });
    expect(await claimKey()).toEqual(held);
    expect(ddb).toHaveReceivedCommandExactlyOnceWith(GetCommand, { TableName: table, Key: key, ConsistentRead: true });

    ddb.reset();
    ddb.on(PutCommand).rejectsOnce(conditionalCheckFailed()).resolves({});
    ddb.on(GetCommand).resolves({});
    expect(await claimKey()).toBeUndefined();
    expect(ddb).toHaveReceivedCommandTimes(PutCommand, 2);
  });

  it('passes through an error that is not a refusal', async () => {
    const failure = throttled();
    ddb.on(PutCommand).rejects(failure);
    await expect(claimKey()).rejects.toBe(failure);
  });

  it('settleIdempotent marks the key done only while it is still this job\'s, and leaves another job\'s alone', async () => {
    ddb.on(UpdateCommand).resolvesOnce({}).rejects(conditionalCheckFailed());
    await store().settleIdempotent('c1', 'order-1', jobId);
    await expect(store().settleIdempotent('c1', 'order-1', jobId)).resolves.toBeUndefined();
    expect(inputs(UpdateCommand)[0]).toEqual({
      TableName: table,
      Key: key,
      UpdateExpression: 'SET #state = :done',
      ConditionExpression: 'jobId = :jobId',
      ExpressionAttributeNames: { '#state': 'state' },
      ExpressionAttributeValues: { ':done': 'done', ':jobId': jobId },
    });
    expectPlaceholdersMatch(inputs(UpdateCommand)[0]);
  });

  it('releaseIdempotent deletes the key only while it is this job\'s pending claim, and leaves another\'s alone', async () => {
    ddb.on(DeleteCommand).resolvesOnce({}).rejects(conditionalCheckFailed());
    await store().releaseIdempotent('c1', 'order-1', jobId);
    await expect(store().releaseIdempotent('c1', 'order-1', jobId)).resolves.toBeUndefined();
    expect(inputs(DeleteCommand)[0]).toEqual({
      TableName: table,
      Key: key,
      ConditionExpression: 'jobId = :jobId AND #state = :pending',
      ExpressionAttributeNames: { '#state': 'state' },
      ExpressionAttributeValues: { ':jobId': jobId, ':pending': 'pending' },
    });
    expectPlaceholdersMatch(inputs(DeleteCommand)[0]);
  });

  it('settle and release let any other error through', async () => {
    const failure = throttled();
    ddb.on(UpdateCommand).rejects(failure);
    ddb.on(DeleteCommand).rejects(failure);
    await expect(store().settleIdempotent('c1', 'order-1', jobId)).rejects.toBe(failure);
    await expect(store().releaseIdempotent('c1', 'order-1', jobId)).rejects.toBe(failure);
  });
});

describe('DynamoClientStore', () => {
  const clients = () => new DynamoClientStore(documents, 'Clients');
  const client: Client = { clientId: 'c1', name: 'shop', tokenHash: 'ab'.repeat(32), signingSecrets: ['whsec_a'], created: '2025-01-01T00:00:00.000Z' };

  it('get reads a client consistently by its id; an unknown one is undefined', async () => {
    ddb.on(GetCommand).resolvesOnce({ Item: client }).resolves({});
    expect(await clients().get('c1')).toEqual(client);
    expect(await clients().get('nobody')).toBeUndefined();
    expect(ddb).toHaveReceivedNthCommandWith(GetCommand, 1, { TableName: 'Clients', Key: { clientId: 'c1' }, ConsistentRead: true });
  });

  it('put writes the client as it is', async () => {
    ddb.on(PutCommand).resolves({});
    await clients().put(client);
    expect(ddb).toHaveReceivedCommandExactlyOnceWith(PutCommand, { TableName: 'Clients', Item: client });
  });

  it('list pages through the table', async () => {
    ddb.on(ScanCommand).callsFake((input: { ExclusiveStartKey?: Item }) =>
      input.ExclusiveStartKey ? { Items: [{ ...client, clientId: 'b' }] } : { Items: [{ ...client, clientId: 'a' }], LastEvaluatedKey: { clientId: 'a' } },
    );
    expect((await clients().list()).map((found) => found.clientId)).toEqual(['a', 'b']);
    expect(ddb).toHaveReceivedCommandTimes(ScanCommand, 2);
    expect(ddb).toHaveReceivedNthCommandWith(ScanCommand, 2, { TableName: 'Clients', ExclusiveStartKey: { clientId: 'a' } });
  });

  it('revoke is a conditional update: true for a client, false for an unknown one, any other error thrown', async () => {
    const failure = throttled();
    ddb.on(UpdateCommand).resolvesOnce({}).rejectsOnce(conditionalCheckFailed()).rejects(failure);
    expect(await clients().revoke('c1', '2025-01-01T00:00:00.000Z')).toBe(true);
    expect(await clients().revoke('nobody', '2025-01-01T00:00:00.000Z')).toBe(false);
    await expect(clients().revoke('c1', '2025-01-01T00:00:00.000Z')).rejects.toBe(failure);
    expect(inputs(UpdateCommand)[0]).toEqual({
      TableName: 'Clients',
      Key: { clientId: 'c1' },
      UpdateExpression: 'SET revoked = :at',
      ConditionExpression: 'attribute_exists(clientId)',
      ExpressionAttributeValues: { ':at': '2025-01-01T00:00:00.000Z' },
    });
  });
});
