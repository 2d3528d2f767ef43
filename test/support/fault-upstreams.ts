/**
 * The two servers a fault proxy stands in front of, for its tests: dynalite in memory and
 * fauxqs, both on 127.0.0.1 (free ports), each recording every AWS JSON call that reached it
 * (its X-Amz-Target operation and parsed body), with one table and one queue made and clients
 * that call them directly (no proxy). Closed by the caller, servers and clients.
 *
 * ```ts
 * const upstreams = await startUpstreams();
 * upstreams.dynamoCalls('PutItem')   // what reached dynalite
 * await upstreams.close();
 * ```
 */
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DescribeTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, type SQSClient } from '@aws-sdk/client-sqs';
import dynalite from 'dynalite';
import { buildApp } from 'fauxqs';
import { awsClients, closeAwsClients, type AwsClients } from '../../lambdas/adapters/aws.ts';

export interface UpstreamCall {
  operation: string;
  body: Record<string, unknown>;
}

export interface Upstreams {
  dynamodbEndpoint: string;
  sqsEndpoint: string;
  /** A table keyed by `pk` (a string) alone. */
  table: string;
  queueUrl: string;
  /** Clients straight to the servers. */
  direct: AwsClients;
  /** The calls that reached dynalite (or fauxqs), with this operation, in arrival order. */
  dynamoCalls(operation: string): UpstreamCall[];
  sqsCalls(operation: string): UpstreamCall[];
  close(): Promise<void>;
}

function record(server: Server, calls: UpstreamCall[]): void {
  server.on('request', (req: IncomingMessage) => {
    const target = req.headers['x-amz-target'];
    if (typeof target !== 'string') return;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      } catch {
        // recorded with an empty body
      }
      calls.push({ operation: target.slice(target.indexOf('.') + 1), body });
    });
  });
}

/** A queue of its own for a test (fauxqs keeps queues in memory). */
export async function makeQueue(upstreams: Upstreams, name: string): Promise<string> {
  return createQueue(upstreams.direct.sqs, name);
}

export async function startUpstreams(): Promise<Upstreams> {
  const dynamo = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    dynamo.once('error', reject);
    dynamo.listen(0, '127.0.0.1', () => resolve());
  });
  const sqs = buildApp({ logger: false });
  const sqsEndpoint = await sqs.listen({ port: 0, host: '127.0.0.1' });
  const dynamoCalls: UpstreamCall[] = [];
  const sqsCalls: UpstreamCall[] = [];
  record(dynamo, dynamoCalls);
  record(sqs.server, sqsCalls);
  const dynamodbEndpoint = `http://127.0.0.1:${(dynamo.address() as AddressInfo).port}`;
  const direct = awsClients({ region: 'us-east-1', endpoints: { dynamodb: dynamodbEndpoint, sqs: sqsEndpoint } });
  const close = async () => {
    closeAwsClients(direct);
    dynamo.closeAllConnections();
    await Promise.allSettled([sqs.close(), new Promise<void>((resolve) => dynamo.close(() => resolve()))]);
  };
  try {
    const table = 'faults';
    await createTable(direct.dynamodb, table);
    const queueUrl = await createQueue(direct.sqs, 'faults');
    return {
      dynamodbEndpoint,
      sqsEndpoint,
      table,
      queueUrl,
      direct,
      dynamoCalls: (operation) => dynamoCalls.filter((call) => call.operation === operation),
      sqsCalls: (operation) => sqsCalls.filter((call) => call.operation === operation),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

async function createTable(db: DynamoDBClient, name: string): Promise<void> {
  await db.send(
    new CreateTableCommand({
      TableName: name,
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  // dynalite makes a table ACTIVE on its next turn: wait for it, within a bound.
  for (let i = 0; i < 100; i++) {
    const { Table } = await db.send(new DescribeTableCommand({ TableName: name }));
    if (Table?.TableStatus === 'ACTIVE') return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`table ${name} did not become ACTIVE`);
}

async function createQueue(client: SQSClient, name: string): Promise<string> {
  const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: '30' } }));
  if (!QueueUrl) throw new Error('fauxqs gave no queue URL');
  return QueueUrl;
}
