/**
 * The sweeper function as Lambda runs it (lambdas/sweeper.ts), its AWS SDK clients mocked with
 * aws-sdk-client-mock: the deadline it takes from its context, the lease, and the metrics it
 * publishes (CloudWatch's embedded metric format, read from its stdout).
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { sweep, sweeperLeaseMs } from '../../lib/definitions.ts';

const ddb = mockClient(DynamoDBDocumentClient);
const sqs = mockClient(SQSClient);

// The function reads its configuration, and whether metrics publish, as it loads.
const saved = { ...process.env };
Object.assign(process.env, {
  JOBS_TABLE: 'Jobs',
  CLIENTS_TABLE: 'Clients',
  LIMITS_TABLE: 'Limits',
  SCHEDULES_TABLE: 'Schedules',
  JOBS_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/jobs',
  CALLBACKS_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/callbacks',
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  POWERTOOLS_LOG_LEVEL: 'ERROR',
});
delete process.env['POWERTOOLS_METRICS_DISABLED'];
const { handler } = await import('../../lambdas/sweeper.ts');
afterAll(() => {
  for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
  Object.assign(process.env, saved);
});

const context = (remainingMs: number) => ({ getRemainingTimeInMillis: () => remainingMs, awsRequestId: 'request-7', functionName: 'sweeper' }) as unknown as Context;
const idleJob = '4e4e4e4e-0000-4000-8000-000000000000';
const long = new Date(Date.now() - 2 * sweep.idleMs).toISOString();

/** Runs the handler; what it returned and the metrics it published. */
async function invoke(remainingMs: number) {
  const lines: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => (lines.push(String(chunk)), true)) as typeof process.stdout.write;
  try {
    const report = await handler({}, context(remainingMs));
    const emf = lines.flatMap((line) => line.split('\n')).filter((line) => line.includes('"_aws"')).map((line) => JSON.parse(line) as Record<string, unknown>);
    return { report, emf };
  } finally {
    process.stdout.write = write;
  }
}

const updates = () => ddb.commandCalls(UpdateCommand).map((call) => call.args[0].input);

beforeEach(() => {
  ddb.reset();
  sqs.reset();
  ddb.on(QueryCommand).resolves({ Items: [] });
  ddb.on(QueryCommand, { ExpressionAttributeValues: { ':shard': '4' } }).resolves({ Items: [{ pk: idleJob, created: long, status: 'running', notified: 'n/a', lastUpdate: long }] });
  ddb.on(UpdateCommand).resolves({ Attributes: {} });
  sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
});

describe('the sweeper function', () => {
  it('sweeps under its lease, re-queues what lost its message, and publishes what it found', async () => {
    const before = Date.now();
    const { report, emf } = await invoke(60_000);
    expect(report).toMatchObject({ jobs: 1, callbacks: 0, skipped: false, unfinished: false, resumed: false, leaseLost: false });
    expect(ddb.commandCalls(QueryCommand)).toHaveLength(16);
    expect(sqs.commandCalls(SendMessageBatchCommand).map((call) => call.args[0].input)).toEqual([
      { QueueUrl: process.env['JOBS_QUEUE_URL'], Entries: [{ Id: '0', MessageBody: JSON.stringify({ kind: 'job', jobId: idleJob }) }] },
    ]);
    const [claim, release] = updates();
    expect(claim?.ExpressionAttributeValues?.[':run']).toBe('request-7');
    const until = Date.parse(String(claim?.ExpressionAttributeValues?.[':until']));
    expect(until).toBeGreaterThanOrEqual(before + sweeperLeaseMs);
    expect(until).toBeLessThanOrEqual(Date.now() + sweeperLeaseMs);
    expect(release).toMatchObject({ ConditionExpression: 'lease_holder = :run', ExpressionAttributeValues: { ':run': 'request-7', ':unfinished': false } });
    expect(emf).toHaveLength(1);
    expect(emf[0]).toMatchObject({ SweptJobs: 1, SweptCallbacks: 0, SweepSkipped: 0, SweepUnfinished: 0, SweepResumed: 0, _aws: { CloudWatchMetrics: [{ Namespace: 'waas' }] } });
  });

  it(`stops ${sweep.stopBeforeTimeoutMs / 1_000} s before its function's timeout: with no more time than that, it takes no entry and saves where it is`, async () => {
    const { report, emf } = await invoke(sweep.stopBeforeTimeoutMs);
    expect(report).toMatchObject({ jobs: 0, unfinished: true, resumeAt: { shard: '0' } });
    expect(ddb.commandCalls(QueryCommand)).toHaveLength(0);
    expect(updates()[1]).toMatchObject({ ExpressionAttributeValues: { ':run': 'request-7', ':unfinished': true, ':shard': '0' } });
    expect(emf[0]).toMatchObject({ SweptJobs: 0, SweepUnfinished: 1, SweepSkipped: 0 });
  });

  it('goes on from where the last run stopped, and says it resumed', async () => {
    ddb.on(UpdateCommand).resolvesOnce({ Attributes: { resume_shard: '4', last_run_unfinished: true } }).resolves({});
    const { report, emf } = await invoke(60_000);
    expect(report).toMatchObject({ jobs: 1, resumed: true, unfinished: false, resumeAt: { shard: '4' } });
    expect(ddb.commandCalls(QueryCommand)[0]?.args[0].input.ExpressionAttributeValues).toEqual({ ':shard': '4' });
    expect(emf[0]).toMatchObject({ SweepResumed: 1, SweepUnfinished: 0 });
  });

  it('finds the lease held by another run and returns at once, saying so', async () => {
    ddb.on(UpdateCommand).rejects(new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} }));
    const { report, emf } = await invoke(60_000);
    expect(report).toMatchObject({ skipped: true, jobs: 0 });
    expect(ddb.commandCalls(QueryCommand)).toHaveLength(0);
    expect(updates()).toHaveLength(1);
    expect(emf[0]).toMatchObject({ SweepSkipped: 1, SweptJobs: 0 });
  });
});
