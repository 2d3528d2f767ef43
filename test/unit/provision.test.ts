/**
 * The local stack's tables and queues, made from lib/definitions.ts through the AWS SDK's
 * clients (mocked with aws-sdk-client-mock): the keys, index, visibility timeouts and redrive
 * policies the CDK stack deploys, and a DATA_DIR's tables kept from an earlier run.
 */
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, ResourceInUseException, type CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient, type CreateQueueCommandInput, type GetQueueAttributesCommandInput } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { toHaveReceivedCommandTimes, toHaveReceivedCommandWith, type CustomMatcher } from 'aws-sdk-client-mock-vitest';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { deadLetterRetentionDays, queues, visibilityTimeoutSeconds } from '../../lib/definitions.ts';
import { localTableNames, provisionQueues, provisionTables } from '../../local/provision.ts';

expect.extend({ toHaveReceivedCommandTimes, toHaveReceivedCommandWith });

declare module 'vitest' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any, @typescript-eslint/no-empty-object-type
  interface Matchers<T = any> extends CustomMatcher<T> {}
}

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const dbMock = mockClient(DynamoDBClient);
const sqsMock = mockClient(SQSClient);
const db = new DynamoDBClient({ region: 'us-east-1', credentials });
const sqs = new SQSClient({ region: 'us-east-1', credentials });

beforeEach(() => {
  dbMock.reset();
  sqsMock.reset();
});

afterEach(() => {
  vi.useRealTimers();
});

const created = () => dbMock.commandCalls(CreateTableCommand).map((call) => call.args[0].input);

describe('provisionTables', () => {
  it('creates the clients, jobs, limits and schedules tables on demand, with the keys, the unsettled index carrying the attributes the sweeper decides on, the due index of delayed jobs, and the schedules\' keys-only client index (no index lists a client\'s jobs: listing entries do)', async () => {
    dbMock.on(CreateTableCommand).resolves({});
    dbMock.on(DescribeTableCommand).resolves({ Table: { TableStatus: 'ACTIVE' } });
    await provisionTables(db);
    expect(created()).toEqual<CreateTableCommandInput[]>([
      {
        TableName: localTableNames.clients,
        KeySchema: [{ AttributeName: 'clientId', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'clientId', AttributeType: 'S' }],
        BillingMode: 'PAY_PER_REQUEST',
      },
      {
        TableName: localTableNames.jobs,
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
          { AttributeName: 'sweep', AttributeType: 'S' },
          { AttributeName: 'created', AttributeType: 'S' },
          { AttributeName: 'due', AttributeType: 'S' },
          { AttributeName: 'next_attempt_at', AttributeType: 'S' },
        ],
        GlobalSecondaryIndexes: [
          {
            IndexName: 'unsettled',
            KeySchema: [
              { AttributeName: 'sweep', KeyType: 'HASH' },
              { AttributeName: 'created', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['status', 'notified', 'lastUpdate', 'lease_until', 'next_attempt_at', 'notify_lease_until', 'next_notify_at'] },
          },
          {
            IndexName: 'due',
            KeySchema: [
              { AttributeName: 'due', KeyType: 'HASH' },
              { AttributeName: 'next_attempt_at', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['timeout_ms'] },
          },
        ],
        BillingMode: 'PAY_PER_REQUEST',
      },
      {
        TableName: localTableNames.limits,
        KeySchema: [{ AttributeName: 'key', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'key', AttributeType: 'S' }],
        BillingMode: 'PAY_PER_REQUEST',
      },
      {
        TableName: localTableNames.schedules,
        KeySchema: [{ AttributeName: 'schedule_id', KeyType: 'HASH' }],
        AttributeDefinitions: [
          { AttributeName: 'schedule_id', AttributeType: 'S' },
          { AttributeName: 'clientId', AttributeType: 'S' },
          { AttributeName: 'created', AttributeType: 'S' },
        ],
        GlobalSecondaryIndexes: [
          {
            IndexName: 'client',
            KeySchema: [
              { AttributeName: 'clientId', KeyType: 'HASH' },
              { AttributeName: 'created', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'KEYS_ONLY' },
          },
        ],
        BillingMode: 'PAY_PER_REQUEST',
      },
    ]);
  });

  it('keeps the tables of an earlier run (ResourceInUseException), and lets any other error through', async () => {
    dbMock.on(CreateTableCommand).rejects(new ResourceInUseException({ message: 'Table already exists', $metadata: {} }));
    dbMock.on(DescribeTableCommand).resolves({ Table: { TableStatus: 'ACTIVE' } });
    await expect(provisionTables(db)).resolves.toBeUndefined();
    expect(dbMock).toHaveReceivedCommandTimes(CreateTableCommand, 4);

    const failure = new Error('AccessDeniedException');
    dbMock.on(CreateTableCommand).rejects(failure);
    await expect(provisionTables(db)).rejects.toBe(failure);
  });

  it('waits for each table to be ACTIVE before going on', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    dbMock.on(CreateTableCommand).resolves({});
    dbMock.on(DescribeTableCommand).resolvesOnce({ Table: { TableStatus: 'CREATING' } }).resolves({ Table: { TableStatus: 'ACTIVE' } });
    let done = false;
    const provisioning = provisionTables(db).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(0);
    // The clients table is still CREATING: nothing else happens until it is ACTIVE.
    expect(dbMock).toHaveReceivedCommandTimes(CreateTableCommand, 1);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(50);
    await provisioning;
    expect(dbMock).toHaveReceivedCommandTimes(CreateTableCommand, 4);
    expect(dbMock.commandCalls(DescribeTableCommand).map((call) => call.args[0].input.TableName)).toEqual([localTableNames.clients, localTableNames.clients, localTableNames.jobs, localTableNames.limits, localTableNames.schedules]);
  });
});

describe('provisionQueues', () => {
  const arnOf = (url: string) => `arn:aws:sqs:us-east-1:000000000000:${url.split('/').at(-1)}`;
  const urlOf = (name: string) => `http://127.0.0.1:9324/000000000000/${name}`;

  function answering() {
    sqsMock.on(CreateQueueCommand).callsFake(async (input: CreateQueueCommandInput) => ({ QueueUrl: urlOf(input.QueueName ?? '') }));
    sqsMock.on(GetQueueAttributesCommand).callsFake(async (input: GetQueueAttributesCommandInput) => ({ Attributes: { QueueArn: arnOf(input.QueueUrl ?? '') } }));
  }

  it('creates the dead-letter queues first, then the work queues redriving to them after maxReceiveCount receives', async () => {
    answering();
    const made = await provisionQueues(sqs);
    const creates = sqsMock.commandCalls(CreateQueueCommand).map((call) => call.args[0].input);
    expect(creates.map((input) => input.QueueName)).toEqual(['waas-jobs-dead-letter', 'waas-callbacks-dead-letter', 'waas-jobs', 'waas-callbacks']);
    expect(creates[0]?.Attributes).toEqual({ VisibilityTimeout: String(visibilityTimeoutSeconds('jobsDeadLetter')), MessageRetentionPeriod: String(deadLetterRetentionDays * 86_400) });
    expect(creates[2]?.Attributes).toEqual({
      VisibilityTimeout: String(visibilityTimeoutSeconds('jobs')),
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arnOf(urlOf('waas-jobs-dead-letter')), maxReceiveCount: queues.jobs.deadLetter.maxReceiveCount }),
    });
    expect(JSON.parse(creates[3]?.Attributes?.['RedrivePolicy'] ?? '{}')).toEqual({ deadLetterTargetArn: arnOf(urlOf('waas-callbacks-dead-letter')), maxReceiveCount: queues.callbacks.deadLetter.maxReceiveCount });
    expect(sqsMock).toHaveReceivedCommandWith(GetQueueAttributesCommand, { QueueUrl: urlOf('waas-jobs'), AttributeNames: ['QueueArn'] });
    expect(made.jobs).toEqual({ name: 'jobs', url: urlOf('waas-jobs'), arn: arnOf(urlOf('waas-jobs')) });
    expect(made.callbacksDeadLetter).toEqual({ name: 'callbacksDeadLetter', url: urlOf('waas-callbacks-dead-letter'), arn: arnOf(urlOf('waas-callbacks-dead-letter')) });
  });

  it('names the queues with the prefix it is given', async () => {
    answering();
    const made = await provisionQueues(sqs, 'test-1');
    expect(Object.values(made).map((queue) => queue.url.split('/').at(-1))).toEqual(expect.arrayContaining(['test-1-jobs', 'test-1-callbacks', 'test-1-jobs-dead-letter', 'test-1-callbacks-dead-letter']));
  });

  it('fails when SQS gives no URL for a queue', async () => {
    sqsMock.on(CreateQueueCommand).resolves({});
    await expect(provisionQueues(sqs)).rejects.toThrow(/no URL for queue waas-jobs-dead-letter/);
  });
});
