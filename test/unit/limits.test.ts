/**
 * The failure counter on the limits table (adapters/limits.ts): the commands it sends, against
 * the AWS SDK's document client mocked with aws-sdk-client-mock; then the FailureCounter
 * contract, held by it on dynalite and by the in-memory counter the core's tests run on, so that
 * no limiter test passes on counts the real table would not give; then the item as an operator
 * finds it.
 */
import { ProvisionedThroughputExceededException } from '@aws-sdk/client-dynamodb';
import { GetCommand, ScanCommand, UpdateCommand, type GetCommandInput, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DynamoFailureCounter, failuresKey } from '../../lambdas/adapters/limits.ts';
import type { CountWindow, FailureCounter } from '../../lambdas/core/ports.ts';
import { startDynalite, type LocalDynamo } from '../support/dynalite.ts';
import { expectPlaceholdersMatch } from '../support/expressions.ts';
import { MemoryFailureCounter } from '../support/memory.ts';
import { useMockedDocuments } from '../support/mock-documents.ts';
import { portSubjects, useSubject } from '../support/subjects.ts';

const window: CountWindow = { start: Date.parse('2025-03-04T05:06:00.000Z'), end: Date.parse('2025-03-04T05:07:00.000Z') };
const next: CountWindow = { start: window.end, end: window.end + 60_000 };
const alice = '11111111111111';
const bob = '22222222222222';

describe('DynamoFailureCounter, as it calls DynamoDB', () => {
  const { ddb: mocked, documents, inputs } = useMockedDocuments();
  const counter = new DynamoFailureCounter(documents, 'Limits');

  it('records a failure in one UpdateItem on the source\'s item of the window: adds to its counters, says what it counts and when it may go', async () => {
    mocked().on(UpdateCommand).resolves({});
    await counter.record('203.0.113.7', window, alice);
    expect(mocked().calls()).toHaveLength(1);
    const [input] = inputs<UpdateCommandInput>(UpdateCommand);
    expect(input).toEqual({
      TableName: 'Limits',
      Key: { key: 'auth-failures#203.0.113.7#2025-03-04T05:06:00.000Z' },
      UpdateExpression: 'ADD #failures :one, #client :one SET #source = :source, #windowStart = :windowStart, #expiresAt = :expiresAt',
      ExpressionAttributeNames: { '#failures': 'failures', '#client': `client ${alice}`, '#source': 'source', '#windowStart': 'windowStart', '#expiresAt': 'expiresAt' },
      // Kept a minute past the window's end, in epoch seconds (DynamoDB's TTL).
      ExpressionAttributeValues: { ':one': 1, ':source': '203.0.113.7', ':windowStart': '2025-03-04T05:06:00.000Z', ':expiresAt': window.end / 1000 + 60 },
      ReturnValues: 'NONE',
    });
    expectPlaceholdersMatch(input);
  });

  it('records a failure without a client id against the source alone', async () => {
    mocked().on(UpdateCommand).resolves({});
    await counter.record('2001:db8::1', window, undefined);
    const [input] = inputs<UpdateCommandInput>(UpdateCommand);
    expect(input?.UpdateExpression).toBe('ADD #failures :one SET #source = :source, #windowStart = :windowStart, #expiresAt = :expiresAt');
    expect(Object.values(input?.ExpressionAttributeNames ?? {}).filter((name) => name.startsWith('client'))).toEqual([]);
    expect(input?.Key).toEqual({ key: 'auth-failures#2001:db8::1#2025-03-04T05:06:00.000Z' });
    expectPlaceholdersMatch(input);
  });

  it('reads the counts in one eventually consistent GetItem of the two counters it needs (half a read unit)', async () => {
    mocked().on(GetCommand).resolves({ Item: { failures: 7, [`client ${alice}`]: 4 } });
    await expect(counter.read('203.0.113.7', window, alice)).resolves.toEqual({ fromSource: 7, againstClient: 4 });
    const [input] = inputs<GetCommandInput>(GetCommand);
    expect(input).toEqual({
      TableName: 'Limits',
      Key: { key: failuresKey('203.0.113.7', window) },
      ProjectionExpression: '#failures, #client',
      ExpressionAttributeNames: { '#failures': 'failures', '#client': `client ${alice}` },
      ConsistentRead: false,
    });
    expectPlaceholdersMatch(input);
  });

  it('reads no failures where there is no item, or no counter for the id', async () => {
    mocked().on(GetCommand).resolvesOnce({}).resolves({ Item: { failures: 2 } });
    await expect(counter.read('203.0.113.7', window, alice)).resolves.toEqual({ fromSource: 0, againstClient: 0 });
    await expect(counter.read('203.0.113.7', window, alice)).resolves.toEqual({ fromSource: 2, againstClient: 0 });
    await counter.read('203.0.113.7', window, undefined);
    expect(inputs<GetCommandInput>(GetCommand)[2]?.ExpressionAttributeNames).toEqual({ '#failures': 'failures' });
  });

  it('lets DynamoDB\'s failures through: what to do without the counts is the limiter\'s to decide', async () => {
    const throttled = new ProvisionedThroughputExceededException({ message: 'Rate exceeded', $metadata: {} });
    mocked().on(GetCommand).rejects(throttled);
    mocked().on(UpdateCommand).rejects(throttled);
    await expect(counter.read('203.0.113.7', window, alice)).rejects.toBe(throttled);
    await expect(counter.record('203.0.113.7', window, alice)).rejects.toBe(throttled);
  });
});

const subjects = portSubjects<FailureCounter>('MemoryFailureCounter', () => new MemoryFailureCounter(), 'DynamoFailureCounter', (db) => new DynamoFailureCounter(db.documents, db.limitsTable));

describe.each(subjects)('the FailureCounter contract: $name', (subject) => {
  const counter = useSubject(subject);

  it('counts nothing before the first failure', async () => {
    await expect(counter().read('203.0.113.7', window, alice)).resolves.toEqual({ fromSource: 0, againstClient: 0 });
  });

  it('counts every failure of a source, and those against each id apart', async () => {
    for (const id of [alice, alice, bob, undefined]) await counter().record('203.0.113.7', window, id);
    await expect(counter().read('203.0.113.7', window, alice)).resolves.toEqual({ fromSource: 4, againstClient: 2 });
    await expect(counter().read('203.0.113.7', window, bob)).resolves.toEqual({ fromSource: 4, againstClient: 1 });
    await expect(counter().read('203.0.113.7', window, '33333333333333')).resolves.toEqual({ fromSource: 4, againstClient: 0 });
    await expect(counter().read('203.0.113.7', window, undefined)).resolves.toEqual({ fromSource: 4, againstClient: 0 });
  });

  it('keeps sources and windows apart', async () => {
    await counter().record('203.0.113.7', window, alice);
    await expect(counter().read('203.0.113.8', window, alice)).resolves.toEqual({ fromSource: 0, againstClient: 0 });
    await expect(counter().read('203.0.113.7', next, alice)).resolves.toEqual({ fromSource: 0, againstClient: 0 });
  });

  it('loses no failure recorded at once by many instances', async () => {
    await Promise.all(Array.from({ length: 25 }, (_, i) => counter().record('203.0.113.7', window, i % 5 === 0 ? alice : bob)));
    await expect(counter().read('203.0.113.7', window, alice)).resolves.toEqual({ fromSource: 25, againstClient: 5 });
  });
});

describe('the limits table, as an operator reads it', () => {
  let dynamo: LocalDynamo;
  beforeEach(async () => {
    dynamo = await startDynalite();
  });
  afterEach(() => dynamo.close());

  it('holds one item per source and window, of plain attributes: the source, the window, the counts, and when it may go', async () => {
    const counter = new DynamoFailureCounter(dynamo.documents, dynamo.limitsTable);
    for (const id of [alice, alice, bob, undefined]) await counter.record('203.0.113.7', window, id);
    const { Items } = await dynamo.documents.send(new ScanCommand({ TableName: dynamo.limitsTable }));
    expect(Items).toEqual([
      {
        key: 'auth-failures#203.0.113.7#2025-03-04T05:06:00.000Z',
        source: '203.0.113.7',
        windowStart: '2025-03-04T05:06:00.000Z',
        failures: 4,
        [`client ${alice}`]: 2,
        [`client ${bob}`]: 1,
        expiresAt: window.end / 1000 + 60,
      },
    ]);
  });
});
