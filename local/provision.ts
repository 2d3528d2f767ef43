/**
 * Creates the local stack's tables and queues from lib/definitions.ts, the same description the
 * CDK stack deploys: keys, visibility timeouts, redrive to the dead-letter queues.
 */
import { CreateTableCommand, DescribeTableCommand, ResourceInUseException, type CreateTableCommandInput, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { deadLetterQueueNames, deadLetterRetentionDays, queues, tables, visibilityTimeoutSeconds, workQueueNames, type QueueName } from '../lib/definitions.ts';

export const localTableNames = { jobs: 'waas-jobs', clients: 'waas-clients', limits: 'waas-limits', schedules: 'waas-schedules' } as const;

export interface LocalQueue {
  name: QueueName;
  url: string;
  arn: string;
}

/**
 * The jobs table as definitions.ts describes it, under `name`: its keys and its indexes.
 * A DATA_DIR whose table has other indexes (made by an earlier version: dynalite cannot add,
 * change or drop an index) is copied into a table made by this at start (local/upgrade.ts).
 */
export function jobsTableSpec(name: string = localTableNames.jobs): CreateTableCommandInput {
  const { unsettledIndex: unsettled, dueIndex: due } = tables.jobs;
  const keys = (partitionKey: string, sortKey: string) => [
    { AttributeName: partitionKey, KeyType: 'HASH' as const },
    { AttributeName: sortKey, KeyType: 'RANGE' as const },
  ];
  const attributes = [...new Set([tables.jobs.partitionKey, tables.jobs.sortKey, unsettled.partitionKey, unsettled.sortKey, due.partitionKey, due.sortKey])];
  return {
    TableName: name,
    BillingMode: 'PAY_PER_REQUEST',
    KeySchema: keys(tables.jobs.partitionKey, tables.jobs.sortKey),
    AttributeDefinitions: attributes.map((AttributeName) => ({ AttributeName, AttributeType: 'S' })),
    GlobalSecondaryIndexes: [
      { IndexName: unsettled.name, KeySchema: keys(unsettled.partitionKey, unsettled.sortKey), Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...unsettled.projected] } },
      { IndexName: due.name, KeySchema: keys(due.partitionKey, due.sortKey), Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...due.projected] } },
    ],
  };
}

/** The schedules table as definitions.ts describes it: its key and its client index. */
export function schedulesTableSpec(): CreateTableCommandInput {
  const { partitionKey, clientIndex } = tables.schedules;
  return {
    TableName: localTableNames.schedules,
    KeySchema: [{ AttributeName: partitionKey, KeyType: 'HASH' }],
    AttributeDefinitions: [partitionKey, clientIndex.partitionKey, clientIndex.sortKey].map((AttributeName) => ({ AttributeName, AttributeType: 'S' })),
    GlobalSecondaryIndexes: [
      {
        IndexName: clientIndex.name,
        KeySchema: [
          { AttributeName: clientIndex.partitionKey, KeyType: 'HASH' },
          { AttributeName: clientIndex.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'KEYS_ONLY' },
      },
    ],
  };
}

/** Creates the table unless it is there (kept from an earlier run in DATA_DIR), and waits until it is active. */
export async function createTable(db: Pick<DynamoDBClient, 'send'>, spec: CreateTableCommandInput): Promise<void> {
  try {
    await db.send(new CreateTableCommand({ ...spec, BillingMode: 'PAY_PER_REQUEST' }));
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
  }
  for (let i = 0; i < 100; i++) {
    const { Table } = await db.send(new DescribeTableCommand({ TableName: spec.TableName }));
    if (Table?.TableStatus === 'ACTIVE') break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function provisionTables(db: DynamoDBClient): Promise<void> {
  const specs: CreateTableCommandInput[] = [
    {
      TableName: localTableNames.clients,
      KeySchema: [{ AttributeName: tables.clients.partitionKey, KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: tables.clients.partitionKey, AttributeType: 'S' }],
    },
    jobsTableSpec(),
    {
      TableName: localTableNames.limits,
      KeySchema: [{ AttributeName: tables.limits.partitionKey, KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: tables.limits.partitionKey, AttributeType: 'S' }],
    },
    schedulesTableSpec(),
  ];
  for (const spec of specs) await createTable(db, spec);
}

/** Dead-letter queues first, so the work queues can name them in their redrive policies. */
export async function provisionQueues(sqs: SQSClient, prefix = 'waas'): Promise<Record<QueueName, LocalQueue>> {
  const ordered = [...deadLetterQueueNames, ...workQueueNames];
  const made = {} as Record<QueueName, LocalQueue>;
  for (const name of ordered) {
    const spec = queues[name];
    const attributes: Record<string, string> = { VisibilityTimeout: String(visibilityTimeoutSeconds(name)) };
    if ('deadLetter' in spec) {
      const target = made[spec.deadLetter.queue];
      attributes['RedrivePolicy'] = JSON.stringify({ deadLetterTargetArn: target.arn, maxReceiveCount: spec.deadLetter.maxReceiveCount });
    } else {
      attributes['MessageRetentionPeriod'] = String(deadLetterRetentionDays * 86_400);
    }
    const queueName = `${prefix}-${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: queueName, Attributes: attributes }));
    if (!QueueUrl) throw new Error(`no URL for queue ${queueName}`);
    const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
    made[name] = { name, url: QueueUrl, arn: Attributes?.['QueueArn'] ?? '' };
  }
  return made;
}
