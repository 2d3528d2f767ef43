/**
 * The benchmark's instruments: the call meter (SDK middleware on real clients, against dynalite,
 * fauxqs and a scripted HTTP server, all on 127.0.0.1), the per-job usage it leads to
 * (background work set apart), percentiles and the CPU-profile reading.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConditionalCheckFailedException, DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { ChangeMessageVisibilityCommand, CreateQueueCommand, DeleteMessageBatchCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { BatchGetCommand, DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ConfiguredRetryStrategy } from '@smithy/core/retry';
import dynalite from 'dynalite';
import { buildApp } from 'fauxqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lambdaSystemLogLevel, tables } from '../../lib/definitions.ts';
import { localTableNames, provisionTables } from '../../local/provision.ts';
import { DynamoJobStore } from '../../lambdas/adapters/dynamo.ts';
import { CallMeter, describeUpdate, diffSnapshots, indexKeysOf, mergeSnapshots, type OperationStats } from '../../bench/meter.ts';
import { summarizeProfile, type CpuProfile } from '../../bench/profile.ts';
import type { Snapshot } from '../../bench/protocol.ts';
import { percentile, summarize } from '../../bench/stats.ts';
import { atScale, diffPhase, usagePerJob, type PhaseUsage } from '../../bench/usage.ts';
import { operationStats } from '../support/meter.ts';

const jobsTable = localTableNames.jobs;
const index = tables.jobs.unsettledIndex;
/** What the stack child gives its meter: every index of the jobs table, its keys and what it projects. */
const indexKeys = { [jobsTable]: indexKeysOf(tables.jobs) };
/** dynalite and fauxqs check no signature, but the SDK signs every call. */
const config = (endpoint: string) => ({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, maxAttempts: 1 });

const listen = (server: Server) =>
  new Promise<string>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
const close = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

describe('the indexes the meter bills', () => {
  it('reads every index of the jobs table from lib/definitions.ts: the sparse sweep index and the sparse due index', () => {
    expect(indexKeysOf(tables.jobs)).toEqual({
      unsettled: { key: 'sweep', sortKey: 'created', projected: [...index.projected] },
      due: { key: 'due', sortKey: 'next_attempt_at', projected: ['timeout_ms'] },
    });
    expect(indexKeysOf(tables.clients)).toEqual({});
  });
});

describe('the call meter on DynamoDB (dynalite)', () => {
  let server: Server;
  let endpoint: string;
  /** A client per test, so each meter sees only its own calls; destroyed after all. */
  const made: DynamoDBClient[] = [];
  const clients = () => {
    const dynamodb = new DynamoDBClient(config(endpoint));
    made.push(dynamodb);
    return { dynamodb, documents: DynamoDBDocumentClient.from(dynamodb, { marshallOptions: { removeUndefinedValues: true } }) };
  };

  beforeAll(async () => {
    server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    endpoint = await listen(server);
    await provisionTables(clients().dynamodb);
  });
  afterAll(async () => {
    for (const client of made) client.destroy();
    await close(server);
  });

  it('asks for the capacity each call consumed and adds it up per operation and item kind, leaving the caller\'s command as it was', async () => {
    const { dynamodb, documents } = clients();
    const meter = new CallMeter();
    meter.attach(dynamodb);
    const put = new PutCommand({ TableName: jobsTable, Item: { pk: 'cap-1', sk: 'job', status: 'accepted', attempts: 0 } });
    await documents.send(put);
    await documents.send(put);
    await documents.send(new GetCommand({ TableName: jobsTable, Key: { pk: 'cap-1', sk: 'job' }, ConsistentRead: true }));
    await documents.send(
      new UpdateCommand({
        TableName: jobsTable,
        Key: { pk: 'cap-1', sk: 'job' },
        UpdateExpression: 'SET #status = :status, #attempts = :attempts REMOVE #lease',
        ExpressionAttributeNames: { '#status': 'status', '#attempts': 'attempts', '#lease': 'lease_until' },
        ExpressionAttributeValues: { ':status': 'started', ':attempts': 1 },
      }),
    );
    expect(put.input).not.toHaveProperty('ReturnConsumedCapacity');
    const snapshot = meter.snapshot();
    expect(Object.keys(snapshot)).toEqual([
      'DynamoDB PutItem waas-jobs sk=job',
      'DynamoDB GetItem waas-jobs sk=job',
      'DynamoDB UpdateItem waas-jobs sk=job set attempts,status −lease_until',
    ]);
    // Items far below 1 KB: a unit per write, a unit per strongly consistent read.
    expect(snapshot['DynamoDB PutItem waas-jobs sk=job']).toMatchObject({ calls: 2, capacityUnits: 2, estimatedUnits: 0, failures: 0, attempts: 2 });
    expect(snapshot['DynamoDB GetItem waas-jobs sk=job']).toMatchObject({ calls: 1, capacityUnits: 1 });
    expect(snapshot['DynamoDB UpdateItem waas-jobs sk=job set attempts,status −lease_until']).toMatchObject({ calls: 1, capacityUnits: 1 });
    expect(snapshot['DynamoDB PutItem waas-jobs sk=job']?.requestBytes).toBeGreaterThan(0);
    expect(snapshot['DynamoDB GetItem waas-jobs sk=job']?.responseBytes).toBeGreaterThan(0);
  });

  it('labels a bare DynamoDBClient\'s call, its attribute values on the wire, as the document client\'s', async () => {
    const { dynamodb, documents } = clients();
    const meter = new CallMeter();
    meter.attach(dynamodb);
    await documents.send(new GetCommand({ TableName: jobsTable, Key: { pk: 'bare-1', sk: 'request' } }));
    await dynamodb.send(new GetItemCommand({ TableName: jobsTable, Key: { pk: { S: 'bare-1' }, sk: { S: 'request' } } }));
    // An eventually consistent read of nothing: half a unit each.
    expect(meter.snapshot()).toEqual({ 'DynamoDB GetItem waas-jobs sk=request': expect.objectContaining({ calls: 2, capacityUnits: 1 }) });
  });

  it('counts a refused conditional write as a failure by its error\'s name, one write unit assumed, and the caller still gets the error', async () => {
    const { dynamodb, documents } = clients();
    const meter = new CallMeter();
    meter.attach(dynamodb);
    const lease = new UpdateCommand({
      TableName: jobsTable,
      Key: { pk: 'missing-1', sk: 'job' },
      UpdateExpression: 'SET #status = :status',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':status': 'started' },
    });
    await expect(documents.send(lease)).rejects.toBeInstanceOf(ConditionalCheckFailedException);
    expect(meter.snapshot()).toEqual({
      'DynamoDB UpdateItem waas-jobs sk=job set status': expect.objectContaining({ calls: 1, failures: 1, errors: { ConditionalCheckFailedException: 1 }, capacityUnits: 0, estimatedUnits: 1 }),
    });
  });

  it('bills a write of the sparse index when its key is put or removed, or a projected attribute of an indexed item changes; not otherwise', async () => {
    const { dynamodb, documents } = clients();
    const meter = new CallMeter({ indexKeys });
    meter.attach(dynamodb);
    const update = (pk: string, expression: string) =>
      documents.send(
        new UpdateCommand({
          TableName: jobsTable,
          Key: { pk, sk: 'job' },
          UpdateExpression: expression,
          ExpressionAttributeNames: Object.fromEntries([...expression.matchAll(/#(\w+)/g)].map(([token, name]) => [token, name ?? ''])),
          ...(expression.includes(':') ? { ExpressionAttributeValues: Object.fromEntries([...expression.matchAll(/:\w+/g)].map(([name]) => [name, name === ':sweep' ? '3' : 'x'])) } : {}),
        }),
      );
    // A job that waits on a retry enters the index, and leaves it when it settles: two entries.
    await documents.send(new PutCommand({ TableName: jobsTable, Item: { pk: 'idx-1', sk: 'job', status: 'accepted', created: 'a' } }));
    await update('idx-1', 'SET #sweep = :sweep, #status = :status');
    // While it waits, its lease (projected) rewrites its entry; its output (not projected) does not.
    await update('idx-1', 'SET #lease_until = :lease');
    await update('idx-1', 'SET #output = :output');
    await update('idx-1', 'SET #status = :status REMOVE #sweep');
    // A job that succeeds at once never had the key: neither its lease nor its final write's removal writes the index.
    await documents.send(new PutCommand({ TableName: jobsTable, Item: { pk: 'idx-2', sk: 'job', status: 'accepted', created: 'a' } }));
    await update('idx-2', 'SET #lease_until = :lease');
    await update('idx-2', 'SET #status = :status REMOVE #sweep');
    // Put with the key, then deleted: two entries.
    await documents.send(new PutCommand({ TableName: jobsTable, Item: { pk: 'idx-3', sk: 'job', sweep: '3', created: 'a' } }));
    await documents.send(new DeleteCommand({ TableName: jobsTable, Key: { pk: 'idx-3', sk: 'job' } }));
    // An item written before the meter started: its removal is billed, as it may have had the key.
    await update('idx-4', 'REMOVE #sweep');
    const snapshot = meter.snapshot();
    expect(snapshot['DynamoDB index write waas-jobs index unsettled (UpdateItem)']).toMatchObject({ calls: 4, capacityUnits: 4 });
    expect(snapshot['DynamoDB index write waas-jobs index unsettled (PutItem)']).toMatchObject({ calls: 1, capacityUnits: 1 });
    expect(snapshot['DynamoDB index write waas-jobs index unsettled (DeleteItem)']).toMatchObject({ calls: 1, capacityUnits: 1 });
  });

  it('labels a listing entry `#listing`, written or read, whatever its key, and bills no index for it, nor for a job\'s items', async () => {
    const { dynamodb, documents } = clients();
    const meter = new CallMeter({ indexKeys });
    meter.attach(dynamodb);
    const store = new DynamoJobStore(documents, jobsTable);
    for (const [i, ids] of [['a-1'], ['b-1', 'b-2', 'b-3']].entries()) await store.enlist('66666666666668', `2026-12-01T00:00:0${i}.000Z`, ids, 1_800_000_000);
    await documents.send(new PutCommand({ TableName: jobsTable, Item: { pk: 'a-1', sk: 'job', clientId: '66666666666668', created: '2026-12-01T00:00:00.000Z', status: 'accepted' } }));
    await store.list('66666666666668', { limit: 10 });
    const snapshot = meter.snapshot();
    expect(snapshot['DynamoDB PutItem waas-jobs #listing']).toMatchObject({ calls: 2, capacityUnits: 2 });
    expect(snapshot['DynamoDB Query waas-jobs #listing']).toMatchObject({ calls: 1 });
    expect(Object.keys(snapshot).filter((label) => label.includes(' index '))).toEqual([]);
  });

  it('one meter of several (unseenItemsIndexed: false) bills no removal from an item another one saw made', async () => {
    const { dynamodb, documents } = clients();
    const meter = new CallMeter({ indexKeys, unseenItemsIndexed: false });
    meter.attach(dynamodb);
    const settle = (pk: string, expression: string) =>
      documents.send(new UpdateCommand({ TableName: jobsTable, Key: { pk, sk: 'job' }, UpdateExpression: expression, ExpressionAttributeNames: { '#sweep': 'sweep', ...(expression.includes('#status') ? { '#status': 'status' } : {}) }, ...(expression.includes(':') ? { ExpressionAttributeValues: { ':sweep': '3', ':status': 'x' } } : {}) }));
    await settle('seen-elsewhere', 'REMOVE #sweep');
    expect(meter.snapshot()['DynamoDB index write waas-jobs index unsettled (UpdateItem)']).toBeUndefined();
    // What it saw set, it bills the removal of.
    await settle('seen-here', 'SET #sweep = :sweep, #status = :status');
    await settle('seen-here', 'REMOVE #sweep');
    expect(meter.snapshot()['DynamoDB index write waas-jobs index unsettled (UpdateItem)']).toMatchObject({ calls: 2, capacityUnits: 2 });
  });

  it('merges several meters\' snapshots call by call, their counts and errors added up', () => {
    const one = new CallMeter();
    const other = new CallMeter();
    const call = (error?: Error) => ({ service: 'DynamoDB' as const, operation: 'GetItem', caller: 'handlers', input: { TableName: jobsTable, Key: { pk: 'a', sk: 'job' } }, output: error ? undefined : { ConsumedCapacity: { CapacityUnits: 1 } }, error, attempts: 1, requestBytes: 10, responseBytes: 20 });
    one.record(call());
    other.record(call());
    other.record(call(Object.assign(new Error('x'), { name: 'ProvisionedThroughputExceededException' })));
    const merged = mergeSnapshots([one.snapshot(), other.snapshot()]);
    expect(merged['DynamoDB GetItem waas-jobs sk=job']).toMatchObject({ calls: 3, failures: 1, capacityUnits: 2, requestBytes: 30, errors: { ProvisionedThroughputExceededException: 1 } });
    // The inputs are left as they were.
    expect(one.snapshot()['DynamoDB GetItem waas-jobs sk=job']).toMatchObject({ calls: 1 });
  });

  it('counts the items a Query of the index and a BatchGetItem return', async () => {
    const { dynamodb, documents } = clients();
    for (const pk of ['sweep-1', 'sweep-2']) await documents.send(new PutCommand({ TableName: jobsTable, Item: { pk, sk: 'job', sweep: 'q', created: pk } }));
    const meter = new CallMeter();
    meter.attach(dynamodb);
    const page = await documents.send(
      new QueryCommand({ TableName: jobsTable, IndexName: index.name, KeyConditionExpression: '#shard = :shard', ExpressionAttributeNames: { '#shard': index.partitionKey }, ExpressionAttributeValues: { ':shard': 'q' } }),
    );
    const keys = (page.Items ?? []).map((item) => ({ pk: item['pk'], sk: item['sk'] }));
    await documents.send(new BatchGetCommand({ RequestItems: { [jobsTable]: { Keys: keys, ConsistentRead: true } } }));
    const snapshot = meter.snapshot();
    expect(snapshot['DynamoDB Query waas-jobs index unsettled']).toMatchObject({ calls: 1, returned: 2 });
    expect(snapshot['DynamoDB BatchGetItem waas-jobs']).toMatchObject({ calls: 1, returned: 2, capacityUnits: 2 });
  });

  it('counts a call once, attached through the client or the document client that shares its middleware stack', async () => {
    const { dynamodb, documents } = clients();
    const meter = new CallMeter();
    meter.attach(dynamodb);
    meter.attach(documents, 'other');
    expect(meter.has(documents)).toBe(true);
    expect(new CallMeter().has(documents)).toBe(false);
    await documents.send(new GetCommand({ TableName: jobsTable, Key: { pk: 'once-1', sk: 'job' }, ConsistentRead: true }));
    expect(meter.snapshot()).toEqual({ 'DynamoDB GetItem waas-jobs sk=job': expect.objectContaining({ calls: 1, caller: 'handlers' }) });
  });
});

/** An HTTP server that answers each request with the next of `answers`, and keeps what it was sent. */
async function scripted(answers: Array<{ status: number; body: string }>) {
  const received: string[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push(Buffer.concat(chunks).toString());
      const answer = answers[Math.min(received.length, answers.length) - 1] ?? { status: 500, body: '{}' };
      response.writeHead(answer.status, { 'content-type': 'application/x-amz-json-1.0', 'content-length': Buffer.byteLength(answer.body) });
      response.end(answer.body);
    });
  });
  const endpoint = await listen(server);
  return { endpoint, received, close: () => close(server) };
}

describe('the call meter on the wire (a scripted server)', () => {
  it('records the bytes of every request sent and response received, a retry\'s too, and asks for the capacity', async () => {
    const failed = '{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"try again"}';
    const found = '{"Item":{"pk":{"S":"j1"},"sk":{"S":"job"}},"ConsumedCapacity":{"TableName":"waas-jobs","CapacityUnits":1}}';
    const server = await scripted([
      { status: 500, body: failed },
      { status: 200, body: found },
    ]);
    const dynamodb = new DynamoDBClient({ ...config(server.endpoint), maxAttempts: undefined, retryStrategy: new ConfiguredRetryStrategy(2, () => 0) });
    try {
      const meter = new CallMeter();
      meter.attach(dynamodb);
      const { Item } = await DynamoDBDocumentClient.from(dynamodb).send(new GetCommand({ TableName: jobsTable, Key: { pk: 'j1', sk: 'job' }, ConsistentRead: true }));
      expect(Item).toEqual({ pk: 'j1', sk: 'job' });
      expect(server.received).toHaveLength(2);
      for (const body of server.received) expect(JSON.parse(body)).toMatchObject({ ReturnConsumedCapacity: 'TOTAL', Key: { pk: { S: 'j1' }, sk: { S: 'job' } } });
      expect(meter.snapshot()['DynamoDB GetItem waas-jobs sk=job']).toEqual(
        expect.objectContaining({
          calls: 1,
          attempts: 2,
          failures: 0,
          capacityUnits: 1,
          requestBytes: server.received.reduce((sum, body) => sum + Buffer.byteLength(body), 0),
          responseBytes: Buffer.byteLength(failed) + Buffer.byteLength(found),
        }),
      );
    } finally {
      dynamodb.destroy();
      await server.close();
    }
  });

  it('leaves a capacity request the caller made as it is, and asks none of SQS', async () => {
    const server = await scripted([{ status: 200, body: '{}' }]);
    const dynamodb = new DynamoDBClient(config(server.endpoint));
    const sqs = new SQSClient({ ...config(server.endpoint), useQueueUrlAsEndpoint: false });
    try {
      const meter = new CallMeter();
      meter.attach(dynamodb);
      meter.attach(sqs);
      await dynamodb.send(new GetItemCommand({ TableName: jobsTable, Key: { pk: { S: 'j1' }, sk: { S: 'job' } }, ReturnConsumedCapacity: 'INDEXES' }));
      await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: 'http://127.0.0.1:1/000000000000/waas-jobs', ReceiptHandle: 'r', VisibilityTimeout: 30 }));
      expect(JSON.parse(server.received[0] ?? '{}')).toMatchObject({ ReturnConsumedCapacity: 'INDEXES' });
      expect(JSON.parse(server.received[1] ?? '{}')).not.toHaveProperty('ReturnConsumedCapacity');
      const snapshot = meter.snapshot();
      // An answer without ConsumedCapacity: one unit assumed.
      expect(snapshot['DynamoDB GetItem waas-jobs sk=job']).toMatchObject({ calls: 1, capacityUnits: 0, estimatedUnits: 1 });
      expect(snapshot['SQS ChangeMessageVisibility waas-jobs']).toMatchObject({ calls: 1, billedRequests: 1, messages: 1 });
    } finally {
      dynamodb.destroy();
      sqs.destroy();
      await server.close();
    }
  });
});

describe('the call meter on SQS (fauxqs)', () => {
  const app = buildApp({ logger: false });
  let sqs: SQSClient;
  let queueUrl: string;

  beforeAll(async () => {
    const endpoint = await app.listen({ port: 0, host: '127.0.0.1' });
    sqs = new SQSClient({ ...config(endpoint), useQueueUrlAsEndpoint: false });
    ({ QueueUrl: queueUrl = '' } = await sqs.send(new CreateQueueCommand({ QueueName: 'waas-jobs' })));
  });
  afterAll(async () => {
    sqs.destroy();
    await app.close();
  });

  it('bills SQS by 64 KiB chunk, a batch as one request, and tells empty receives apart', async () => {
    const meter = new CallMeter();
    meter.attach(sqs, 'event source');
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'x'.repeat(65 * 1024) }));
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: '{}' }));
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
    expect(Messages).toHaveLength(2);
    await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: Messages.map((message, i) => ({ Id: String(i), ReceiptHandle: message.ReceiptHandle ?? '' })) }));
    await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
    const snapshot = meter.snapshot();
    expect(snapshot['SQS SendMessage waas-jobs [event source]']).toMatchObject({ calls: 2, billedRequests: 3, messages: 2 });
    expect(snapshot['SQS ReceiveMessage waas-jobs [event source]']).toMatchObject({ calls: 1, billedRequests: 2, returned: 2 });
    expect(snapshot['SQS DeleteMessageBatch waas-jobs [event source]']).toMatchObject({ calls: 1, billedRequests: 1, messages: 2 });
    expect(snapshot['SQS ReceiveMessage waas-jobs (empty) [event source]']).toMatchObject({ calls: 1, returned: 0 });
    expect(snapshot['SQS SendMessage waas-jobs [event source]']?.requestBytes).toBeGreaterThan(65 * 1024);
  });

  it('counts a failed SQS call as a call and a failure, by the error\'s name', async () => {
    const meter = new CallMeter();
    meter.attach(sqs);
    const sent = sqs.send(new SendMessageCommand({ QueueUrl: queueUrl.replace(/waas-jobs$/, 'gone'), MessageBody: '{}' }));
    const error = await sent.then(
      () => undefined,
      (failure: unknown) => failure as Error,
    );
    expect(error?.name).toMatch(/\w/);
    expect(meter.snapshot()['SQS SendMessage gone']).toMatchObject({ calls: 1, failures: 1, errors: { [error?.name ?? '?']: 1 } });
  });
});

describe('describing a call', () => {
  it('describes an update by the attributes it sets and removes', () => {
    expect(describeUpdate('SET #a = :a, #b = :b REMOVE #c', { '#a': 'status', '#b': 'attempts', '#c': 'lease_until' })).toBe('set attempts,status −lease_until');
    expect(describeUpdate('REMOVE #x, #y', { '#x': 'sweep', '#y': 'a' })).toBe('−a,−sweep');
    expect(describeUpdate('SET #h = list_append(if_not_exists(#h, :empty), :h), n = n + :one', { '#h': 'history' })).toBe('set history,n');
  });
});

describe('usage per job', () => {
  const snapshot = (meter: Snapshot['meter'], invocations: Snapshot['invocations'], logBytes = 0): Snapshot => ({ meter, invocations, logBytes, errors: 0, hrtimeUs: 0 });
  const op = operationStats;

  it('divides a phase by its jobs and sets the sweeper and idle polling apart', () => {
    const before = snapshot(
      {
        put: op('DynamoDB', 'PutItem', 'waas-jobs sk=job', 'handlers', { calls: 10, capacityUnits: 10, attempts: 10, requestBytes: 9_000 }),
        lease: op('DynamoDB', 'UpdateItem', 'waas-jobs sk=job set status', 'handlers', { calls: 10, failures: 1, errors: { ConditionalCheckFailedException: 1 } }),
      },
      { api: { invocations: 5, totalMs: 50, billedMs: 55, maxMs: 20 } },
    );
    const after = snapshot(
      {
        put: op('DynamoDB', 'PutItem', 'waas-jobs sk=job', 'handlers', { calls: 20, capacityUnits: 20, attempts: 20, requestBytes: 19_000, responseBytes: 640 }),
        lease: op('DynamoDB', 'UpdateItem', 'waas-jobs sk=job set status', 'handlers', { calls: 21, capacityUnits: 10, estimatedUnits: 3, failures: 4, errors: { ConditionalCheckFailedException: 4 } }),
        query: op('DynamoDB', 'Query', 'waas-jobs index unsettled', 'handlers', { calls: 16, capacityUnits: 8, returned: 5 }),
        batchGet: op('DynamoDB', 'BatchGetItem', 'waas-jobs', 'handlers', { calls: 1, capacityUnits: 5, returned: 5 }),
        sweeperLease: op('DynamoDB', 'UpdateItem', 'waas-jobs sk=state set lease_holder,lease_until', 'handlers', { calls: 1, capacityUnits: 1 }),
        idle: op('SQS', 'ReceiveMessage', 'waas-jobs (empty)', 'event source', { calls: 40, billedRequests: 40 }),
        send: op('SQS', 'SendMessage', 'waas-jobs', 'handlers', { calls: 10, billedRequests: 10, messages: 10 }),
      },
      { api: { invocations: 15, totalMs: 150, billedMs: 165, maxMs: 20 }, sweeper: { invocations: 1, totalMs: 30, billedMs: 30, maxMs: 30 } },
      1000,
    );
    const phase = usagePerJob(diffPhase(before, after), 10, 1200);
    expect(phase.usage.dynamodb).toEqual([
      { item: 'PutItem waas-jobs sk=job', calls: 1, readUnits: 0, writeUnits: 1 },
      // 11 updates, 3 of them refused: 10 units consumed and 3 assumed.
      { item: 'UpdateItem waas-jobs sk=job set status', calls: 1.1, readUnits: 0, writeUnits: 1.3 },
    ]);
    expect(phase.operations.find((o) => o.item === 'PutItem waas-jobs sk=job')).toMatchObject({ requestBytesPerCall: 1000, responseBytesPerCall: 64, failures: 0 });
    expect(phase.operations.find((o) => o.item.startsWith('UpdateItem'))).toMatchObject({ failures: 0.3, errors: { ConditionalCheckFailedException: 3 } });
    expect(phase.usage.sqs).toEqual([{ item: 'SendMessage waas-jobs', calls: 1, billedRequests: 1 }]);
    expect(phase.usage.lambda).toEqual([{ fn: 'api', invocations: 1, billedMs: 11, memoryMb: 512 }]);
    expect(phase.usage.apiGateway).toEqual({ requests: 1, billedRequests: 1 });
    // The index walk, the BatchGetItem of the jobs it listed, the empty receives: not per job.
    expect(phase.background.sweeperInvocations).toBe(1);
    expect(phase.background.calls.map((c) => [c.item, c.calls])).toEqual([
      ['Query waas-jobs index unsettled (sweeper)', 16],
      ['BatchGetItem waas-jobs (sweeper)', 1],
      ['UpdateItem waas-jobs sk=state set lease_holder,lease_until (sweeper)', 1],
      ['ReceiveMessage waas-jobs (empty) [event source] (idle polling)', 40],
    ]);
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
