/**
 * `node --import tsx bench/release.ts --jobs 20000`: what a delayed job that waits in the store
 * costs, and how fast the release hands a crowd of them to the queue (core/release.ts;
 * lib/definitions.ts weighs the due index).
 *
 * Starts the local stack's storage process (dynalite on disk and fauxqs, in a temporary
 * DATA_DIR, as `npm start` runs it), provisions the tables and queues, and writes `--jobs`
 * delayed jobs through the store's own `create` (`--concurrency` at once), all due in the same
 * minute 20 minutes ahead, as submit makes them (core/submit.ts `newJob`). Then runs the release
 * as its function would, its clock six minutes on (the minute within its horizon), with a 45 s
 * deadline, run after run until every job is sent. Every DynamoDB and SQS call is metered
 * (bench/meter.ts: calls, the capacity DynamoDB reports, its index writes, SQS's billed
 * requests); it prints the calls, units and requests per job of the writes and of the release,
 * their cost per million jobs at bench/prices.json's prices, and the release's rate.
 *
 * The rate is dynalite's and fauxqs's on this machine, not DynamoDB's and SQS's; the units and
 * requests are AWS's arithmetic.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { awsClients, closeAwsClients } from '../lambdas/adapters/aws.ts';
import { DynamoDueIndex } from '../lambdas/adapters/due-index.ts';
import { DynamoJobStore } from '../lambdas/adapters/dynamo.ts';
import { SqsWorkQueue } from '../lambdas/adapters/sqs.ts';
import type { Client } from '../lambdas/core/ports.ts';
import { releaseDue } from '../lambdas/core/release.ts';
import { newJob } from '../lambdas/core/submit.ts';
import { tables } from '../lib/definitions.ts';
import { localTableNames, provisionQueues, provisionTables } from '../local/provision.ts';
import { startStorage } from '../local/storage.ts';
import { million, prices, unitPrice } from './cost.ts';
import { CallMeter, diffSnapshots, indexKeysOf, type MeterSnapshot } from './meter.ts';

const { values } = parseArgs({ options: { jobs: { type: 'string', default: '20000' }, concurrency: { type: 'string', default: '32' } } });
const jobCount = Number(values.jobs);
const concurrency = Number(values.concurrency);

const dataDir = mkdtempSync(join(tmpdir(), 'waas-bench-release-'));
const storage = await startStorage(dataDir);
process.env['AWS_ACCESS_KEY_ID'] ??= 'local';
process.env['AWS_SECRET_ACCESS_KEY'] ??= 'local';
const aws = awsClients({ region: 'us-east-1', endpoints: { dynamodb: storage.dynamodbEndpoint, sqs: storage.sqsEndpoint } });
const meter = new CallMeter({ indexKeys: { [localTableNames.jobs]: indexKeysOf(tables.jobs) } });
meter.attach(aws.dynamodb);
meter.attach(aws.sqs);

/** Per job, what a phase's calls add up to, and what that costs a million jobs on demand. */
function perJob(phase: MeterSnapshot, jobs: number) {
  let writeUnits = 0;
  let readUnits = 0;
  let sqsRequests = 0;
  const calls: Record<string, number> = {};
  for (const [name, stats] of Object.entries(phase)) {
    calls[name] = stats.calls / jobs;
    if (stats.service === 'SQS') sqsRequests += stats.billedRequests;
    else if (['GetItem', 'Query', 'Scan', 'BatchGetItem'].includes(stats.operation)) readUnits += stats.capacityUnits + stats.estimatedUnits;
    else writeUnits += stats.capacityUnits + stats.estimatedUnits;
  }
  const usd = {
    dynamoWrites: (writeUnits / jobs) * million * unitPrice(prices.dynamodb.writeRequestUnits),
    dynamoReads: (readUnits / jobs) * million * unitPrice(prices.dynamodb.readRequestUnits),
    sqs: (sqsRequests / jobs) * million * unitPrice(prices.sqs.standardRequests),
  };
  return { writeUnits: writeUnits / jobs, readUnits: readUnits / jobs, sqsRequests: sqsRequests / jobs, calls, usdPerMillion: { ...usd, total: usd.dynamoWrites + usd.dynamoReads + usd.sqs } };
}

try {
  await provisionTables(aws.dynamodb);
  const made = await provisionQueues(aws.sqs);
  const store = new DynamoJobStore(aws.documents, localTableNames.jobs);
  const due = new DynamoDueIndex(aws.documents, localTableNames.jobs);
  const queue = new SqsWorkQueue(aws.sqs, { job: made.jobs.url, callback: made.callbacks.url });
  const now = Date.now();
  const startAt = Math.floor(now / 60_000) * 60_000 + 20 * 60_000 + 30_000;
  const client = { clientId: '11111111111111' } as Client;

  const before = meter.snapshot();
  const written = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < jobCount) {
        const { job, request } = newJob({ clock: { now: () => now }, retentionDays: 30 }, client, { service: 'https://service.example.com/orders', startAt: startAt + (next % 30_000) });
        await store.create(job, request);
      }
    }),
  );
  const writeSeconds = (performance.now() - written) / 1_000;
  const afterWrites = meter.snapshot();

  // The release as its function runs it, six minutes on: the jobs' minute is within its horizon.
  const clock = { now: () => Date.now() + 6 * 60_000 };
  await due.saveReleasedThrough(Math.floor(clock.now() / 60_000) * 60_000 - 60_000);
  const released = performance.now();
  const runs: Array<{ released: number; seconds: number; unfinished: boolean }> = [];
  let sent = 0;
  while (sent < jobCount && runs.length < 50) {
    const run = performance.now();
    const report = await releaseDue({ due, queue, clock }, { deadline: clock.now() + 45_000 });
    runs.push({ released: report.released, seconds: (performance.now() - run) / 1_000, unfinished: report.unfinished });
    sent += report.released;
  }
  const releaseSeconds = (performance.now() - released) / 1_000;
  const afterRelease = meter.snapshot();

  console.log(
    JSON.stringify(
      {
        jobs: jobCount,
        writes: { seconds: writeSeconds, jobsPerSecond: jobCount / writeSeconds, ...perJob(diffSnapshots(before, afterWrites), jobCount) },
        release: { seconds: releaseSeconds, jobsPerSecond: sent / releaseSeconds, sent, runs, ...perJob(diffSnapshots(afterWrites, afterRelease), jobCount) },
      },
      null,
      2,
    ),
  );
} finally {
  closeAwsClients(aws);
  await storage.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
