/**
 * The AWS calls of delayed jobs, against the SDK's clients mocked with aws-sdk-client-mock: a
 * message's delay as DelaySeconds (rounded up, capped at SQS's 15 minutes, not in the body), on
 * SendMessage and on each SendMessageBatch entry; the due index's Query, its conditional mark
 * and the release's forward-only progress; and the first delivery's condition that the job be due.
 * test/unit/delay-store.contract.test.ts runs the due index on dynalite against the memory one.
 */
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SendMessageBatchCommand, SendMessageCommand, SQSClient, type SendMessageBatchCommandInput } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { toHaveReceivedCommandExactlyOnceWith, toHaveReceivedCommandWith, type CustomMatcher } from 'aws-sdk-client-mock-vitest';
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { documentOptions } from '../../lambdas/adapters/aws.ts';
import { DynamoDueIndex } from '../../lambdas/adapters/due-index.ts';
import { updateParts } from '../../lambdas/adapters/dynamo.ts';
import { outgoing, parseMessage, SqsWorkQueue } from '../../lambdas/adapters/sqs.ts';
import type { DueJob, QueueMessage } from '../../lambdas/core/ports.ts';

expect.extend({ toHaveReceivedCommandExactlyOnceWith, toHaveReceivedCommandWith });

declare module 'vitest' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any, @typescript-eslint/no-empty-object-type
  interface Matchers<T = any> extends CustomMatcher<T> {}
}

const sqsMock = mockClient(SQSClient);
const sqs = new SQSClient({ region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
const urls = { job: 'https://sqs.us-east-1.amazonaws.com/000000000000/jobs', callback: 'https://sqs.us-east-1.amazonaws.com/000000000000/callbacks' };

const ddb = mockClient(DynamoDBDocumentClient);
const documents = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }), documentOptions);
const table = 'Jobs';

beforeEach(() => {
  sqsMock.reset();
  ddb.reset();
});

describe('a delayed message on SQS', () => {
  it('SendMessage carries the delay as DelaySeconds, rounded up to whole seconds, and not in its body', async () => {
    sqsMock.on(SendMessageCommand).resolves({ MessageId: 'm' });
    await new SqsWorkQueue(sqs, urls).send({ kind: 'job', jobId: 'j-1', leaseMs: 25_000, delayMs: 2_001 });
    expect(sqsMock).toHaveReceivedCommandExactlyOnceWith(SendMessageCommand, { QueueUrl: urls.job, DelaySeconds: 3, MessageBody: JSON.stringify({ kind: 'job', jobId: 'j-1', leaseMs: 25_000 }) });
  });

  it('each SendMessageBatch entry carries its own delay; one due now has none', async () => {
    sqsMock.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => ({ Successful: (input.Entries ?? []).map((entry) => ({ Id: entry.Id, MessageId: 'm', MD5OfMessageBody: '' })), Failed: [] }));
    const messages: QueueMessage[] = [
      { kind: 'job', jobId: 'a', delayMs: 899_001 },
      { kind: 'job', jobId: 'b' },
      { kind: 'job', jobId: 'c', delayMs: 0 },
    ];
    expect(await new SqsWorkQueue(sqs, urls).sendBatch(messages)).toEqual([true, true, true]);
    await new SqsWorkQueue(sqs, urls).sendMany([{ kind: 'job', jobId: 'd', delayMs: 1 }]);
    const entries = sqsMock.calls().flatMap((call) => ((call.args[0] as SendMessageBatchCommand).input.Entries ?? []).map((entry) => [JSON.parse(entry.MessageBody ?? '{}').jobId, entry.DelaySeconds]));
    expect(entries).toEqual([
      ['a', 900],
      ['b', undefined],
      ['c', undefined],
      ['d', 1],
    ]);
  });

  it('for any delay: whole seconds no shorter than it, at most 15 minutes, and a body that reads back as the message without it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 * 60_000 }), fc.integer({ min: 1, max: 90_000 }), (delayMs, leaseMs) => {
        const { MessageBody, DelaySeconds = 0 } = outgoing({ kind: 'job', jobId: 'j', leaseMs, delayMs });
        expect(Number.isInteger(DelaySeconds)).toBe(true);
        expect(DelaySeconds).toBe(Math.min(900, Math.ceil(delayMs / 1_000)));
        expect(parseMessage(MessageBody)).toEqual({ kind: 'job', jobId: 'j', leaseMs });
      }),
    );
  });
});

describe('DynamoDueIndex', () => {
  const bucket = '2027-03-01T09:30Z#7';

  it('reads a bucket by its partition key, page by page, each entry with its time and timeout (absent: the default)', async () => {
    ddb
      .on(QueryCommand)
      .resolvesOnce({ Items: [{ pk: '7a', sk: 'job', due: bucket, next_attempt_at: '2027-03-01T09:30:01.000Z', timeout_ms: 3_000 }], LastEvaluatedKey: { pk: '7a', sk: 'job', due: bucket, next_attempt_at: '2027-03-01T09:30:01.000Z' } })
      .resolvesOnce({ Items: [{ pk: '7b', sk: 'job', due: bucket, next_attempt_at: '2027-03-01T09:30:59.999Z' }] });
    const found: DueJob[] = [];
    for await (const job of new DynamoDueIndex(documents, table).due(bucket)) found.push(job);
    expect(found).toEqual([
      { jobId: '7a', due: bucket, startAt: Date.parse('2027-03-01T09:30:01.000Z'), timeoutMs: 3_000 },
      { jobId: '7b', due: bucket, startAt: Date.parse('2027-03-01T09:30:59.999Z'), timeoutMs: 10_000 },
    ]);
    expect(ddb).toHaveReceivedCommandWith(QueryCommand, { TableName: table, IndexName: 'due', KeyConditionExpression: '#due = :bucket', ExpressionAttributeNames: { '#due': 'due' }, ExpressionAttributeValues: { ':bucket': bucket } });
    expect(ddb.commandCalls(QueryCommand)[1]?.args[0].input.ExclusiveStartKey).toEqual({ pk: '7a', sk: 'job', due: bucket, next_attempt_at: '2027-03-01T09:30:01.000Z' });
  });

  it('marks a job released by removing `due`, only while it is still that bucket\'s; a lost condition is false, any other failure surfaces', async () => {
    ddb.on(UpdateCommand).resolvesOnce({}).rejectsOnce(new ConditionalCheckFailedException({ message: 'no', $metadata: {} })).rejectsOnce(new Error('throttled'));
    const index = new DynamoDueIndex(documents, table);
    expect(await index.released('7a', bucket)).toBe(true);
    expect(ddb).toHaveReceivedCommandWith(UpdateCommand, { TableName: table, Key: { pk: '7a', sk: 'job' }, UpdateExpression: 'REMOVE #due', ConditionExpression: '#due = :bucket', ExpressionAttributeValues: { ':bucket': bucket } });
    expect(await index.released('7a', bucket)).toBe(false);
    await expect(index.released('7a', bucket)).rejects.toThrow('throttled');
  });

  it('keeps its progress in its own item, forward only: an earlier minute than the one saved is left unsaved', async () => {
    ddb.on(GetCommand).resolvesOnce({}).resolvesOnce({ Item: { pk: 'release', sk: 'state', released_through: '2027-03-01T09:30:00.000Z' } });
    ddb.on(UpdateCommand).resolvesOnce({}).rejectsOnce(new ConditionalCheckFailedException({ message: 'later saved', $metadata: {} }));
    const index = new DynamoDueIndex(documents, table);
    expect(await index.releasedThrough()).toBeUndefined();
    expect(await index.releasedThrough()).toBe(Date.parse('2027-03-01T09:30:00.000Z'));
    expect(ddb).toHaveReceivedCommandWith(GetCommand, { TableName: table, Key: { pk: 'release', sk: 'state' }, ConsistentRead: true });
    await index.saveReleasedThrough(Date.parse('2027-03-01T09:31:00.000Z'));
    await expect(index.saveReleasedThrough(Date.parse('2027-03-01T09:29:00.000Z'))).resolves.toBeUndefined();
    expect(ddb).toHaveReceivedCommandWith(UpdateCommand, {
      Key: { pk: 'release', sk: 'state' },
      ConditionExpression: 'attribute_not_exists(released_through) OR released_through < :through',
      ExpressionAttributeValues: { ':through': '2027-03-01T09:31:00.000Z', ':now': expect.any(String) },
    });
  });
});

describe('the first delivery\'s condition', () => {
  it('asks that next_attempt_at be absent or at most now, as the stored ISO text, and removes it and `due` as it takes the job', () => {
    const now = Date.parse('2027-03-01T09:30:00.000Z');
    const parts = updateParts({ status: 'started', attempts: 1, remove: ['nextAttemptAt', 'due'] }, { expect: { status: 'accepted' }, dueBy: now });
    expect(parts.ConditionExpression).toContain('(attribute_not_exists(#next_attempt_at) OR #next_attempt_at <= :due_by)');
    expect(parts.ExpressionAttributeValues).toMatchObject({ ':due_by': '2027-03-01T09:30:00.000Z' });
    expect(parts.UpdateExpression).toMatch(/REMOVE #next_attempt_at, #due$/);
  });
});
