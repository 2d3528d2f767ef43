/**
 * Creates the local stack's tables and queues from lib/definitions.ts, the same description the
 * CDK stack deploys: keys, visibility timeouts, redrive to the dead-letter queues.
 */
import { CreateTableCommand, DescribeTableCommand, ResourceInUseException, type CreateTableCommandInput, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { deadLetterQueueNames, deadLetterRetentionDays, queues, tables, visibilityTimeoutSeconds, workQueueNames, type QueueName } from '../lib/definitions.ts';

export const localTableNames = { jobs: 'waas-jobs', clients: 'waas-clients', limits: 'waas-limits' } as const;

export interface LocalQueue {
  name: QueueName;
  url: string;
  arn: string;
}

export async function provisionTables(db: DynamoDBClient): Promise<void> {
  const index = tables.jobs.unsettledIndex;
  const specs: CreateTableCommandInput[] = [
    {
      TableName: localTableNames.clients,
      KeySchema: [{ AttributeName: tables.clients.partitionKey, KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: tables.clients.partitionKey, AttributeType: 'S' }],
    },
    {
      TableName: localTableNames.jobs,
      KeySchema: [
        { AttributeName: tables.jobs.partitionKey, KeyType: 'HASH' },
        { AttributeName: tables.jobs.sortKey, KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: tables.jobs.partitionKey, AttributeType: 'S' },
        { AttributeName: tables.jobs.sortKey, AttributeType: 'S' },
        { AttributeName: index.partitionKey, AttributeType: 'S' },
        { AttributeName: index.sortKey, AttributeType: 'S' },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: index.name,
          KeySchema: [
            { AttributeName: index.partitionKey, KeyType: 'HASH' },
            { AttributeName: index.sortKey, KeyType: 'RANGE' },
          ],
          // A DATA_DIR made before the index carried them keeps its keys-only index (dynalite
          // cannot change one): the jobs store reads what such an entry lacks from its job.
          Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...index.projected] },
        },
      ],
    },
    {
      TableName: localTableNames.limits,
      KeySchema: [{ AttributeName: tables.limits.partitionKey, KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: tables.limits.partitionKey, AttributeType: 'S' }],
    },
  ];
  for (const spec of specs) {
    try {
      await db.send(new CreateTableCommand({ ...spec, BillingMode: 'PAY_PER_REQUEST' }));
    } catch (error) {
      // Kept from an earlier run in DATA_DIR.
      if (!(error instanceof ResourceInUseException)) throw error;
    }
    for (let i = 0; i < 100; i++) {
      const { Table } = await db.send(new DescribeTableCommand({ TableName: spec.TableName }));
      if (Table?.TableStatus === 'ACTIVE') break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
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
