/**
 * `node --import tsx bench/list.ts --jobs 100000`: what a page of GET /v1/jobs costs as the jobs
 * table grows, to show it does not grow with it (lib/definitions.ts argues the listing entries).
 *
 * Starts the local stack's storage process (dynalite on disk, in a temporary DATA_DIR, a process
 * of its own as `npm start` runs it), provisions the tables, and writes jobs through the store's
 * own `enlist` and `create` (`--concurrency` at once, one listing entry per job, as single submits have them): `--jobs` of one client, and a quarter as many of three
 * others, interleaved in time, of mixed statuses (completed 80 %, failed 10 %, running 5 %,
 * cancelled 3 %, accepted 2 %; a completed or failed job carries an answer, as a job item does
 * once tried). At each checkpoint (`--at`, by the client's jobs written; default 10,000 and
 * `--jobs`) it times `--samples` calls of `list` for each page (after `--warmup` untimed ones):
 *   - the first page (`--limit` jobs, newest first);
 *   - a page from the middle (a cursor at the client's median job);
 *   - a status-filtered page (`failed`), from the start and from the middle;
 * and prints, per page, p50 and p95 milliseconds and the read units consumed (DynamoDB's
 * ReturnConsumedCapacity, which dynalite reckons as DynamoDB does, per 4 KB), and the write rate.
 *
 * The figures are dynalite's on this machine, not DynamoDB's: what they show is the shape (a
 * page costs the same at 10,000 jobs as at 100,000), and the read units, which are DynamoDB's
 * arithmetic.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { awsClients, closeAwsClients } from '../lambdas/adapters/aws.ts';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoJobStore } from '../lambdas/adapters/dynamo.ts';
import { jobItem, requestItem } from '../lambdas/adapters/job-items.ts';
import type { AttemptOutput, Job, JobStatus } from '../lambdas/core/job.ts';
import { encodeCursor, type Client, type ListQuery } from '../lambdas/core/ports.ts';
import { newJob } from '../lambdas/core/submit.ts';
import { localTableNames, provisionTables } from '../local/provision.ts';
import { startStorage } from '../local/storage.ts';
import { summarize } from './stats.ts';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '100000' },
    at: { type: 'string' },
    concurrency: { type: 'string', default: '32' },
    samples: { type: 'string', default: '40' },
    warmup: { type: 'string', default: '5' },
    limit: { type: 'string', default: '20' },
  },
});
const jobsOfClient = Number(values.jobs);
const checkpoints = (values.at ?? `10000,${jobsOfClient}`)
  .split(',')
  .map(Number)
  .filter((n) => n > 0 && n <= jobsOfClient)
  .sort((a, b) => a - b);
const concurrency = Number(values.concurrency);
const samples = Number(values.samples);
const warmup = Number(values.warmup);
const limit = Number(values.limit);

const client = '11111111111111';
const others = ['22222222222222', '33333333333333', '44444444444444'];
/** Statuses by weight, out of 100. */
const statusAt = (i: number): JobStatus => {
  const n = (i * 37) % 100;
  return n < 80 ? 'completed' : n < 90 ? 'failed' : n < 95 ? 'running' : n < 98 ? 'cancelled' : 'accepted';
};
const base = Date.parse('2026-01-01T00:00:00.000Z');
const answered = (statusCode: number, started: string): AttemptOutput => {
  const body = JSON.stringify({ ok: statusCode < 300, id: started, note: 'a short answer, as most services give' });
  return { started, durationMs: 87, statusCode, headers: { 'content-type': 'application/json', date: new Date(base).toUTCString() }, body, bodyEncoding: 'utf8', bodyBytes: body.length, truncated: false };
};

/** A job as submit makes it (core/submit.ts `newJob`), with `fields` over it. */
const jobOf = (fields: Partial<Job> & Pick<Job, 'jobId' | 'clientId' | 'created' | 'status'>): Job => {
  const made = newJob({ clock: { now: () => base }, retentionDays: 30, newId: () => fields.jobId }, { clientId: fields.clientId } as Client, {
    service: 'https://service.example.com/orders',
  }).job;
  return { ...made, lastUpdate: fields.created, ...fields };
};

const dataDir = mkdtempSync(join(tmpdir(), 'waas-bench-list-'));
const storage = await startStorage(dataDir);
const aws = awsClients({ region: 'us-east-1', endpoints: { dynamodb: storage.dynamodbEndpoint } });
process.env['AWS_ACCESS_KEY_ID'] ??= 'local';
process.env['AWS_SECRET_ACCESS_KEY'] ??= 'local';

/** Read units of the calls made while `counting` is on: each Query's and BatchGetItem's ConsumedCapacity, asked for by a middleware (the store asks for none). */
let units = 0;
let counting = false;
aws.dynamodb.middlewareStack.add(
  (next) => async (args) => {
    const input = args.input as Record<string, unknown>;
    if (counting) input['ReturnConsumedCapacity'] = 'TOTAL';
    const result = await next(args);
    if (counting) {
      const consumed = (result.output as { ConsumedCapacity?: { CapacityUnits?: number } | Array<{ CapacityUnits?: number }> }).ConsumedCapacity;
      for (const each of [consumed ?? []].flat()) units += each.CapacityUnits ?? 0;
    }
    return result;
  },
  { step: 'initialize', name: 'benchConsumedCapacity' },
);

const store = new DynamoJobStore(aws.documents, localTableNames.jobs);
/** The client's jobs as written, oldest first: a cursor into the middle is made from them. */
const written: Array<Pick<Job, 'jobId' | 'created'>> = [];

async function writeUpTo(target: number): Promise<{ jobs: number; seconds: number }> {
  const start = performance.now();
  const from = written.length;
  // Each of the client's jobs, and after every fourth one a job of another client's, interleaved in time.
  const queue: Job[] = [];
  for (let i = from; i < target; i++) {
    const created = new Date(base + i * 1_000).toISOString();
    const status = statusAt(i);
    const tried = status === 'completed' || status === 'failed';
    const job = jobOf({
      jobId: crypto.randomUUID(),
      clientId: client,
      created,
      lastUpdate: created,
      status,
      attempts: tried ? 1 : 0,
      output: tried ? answered(status === 'completed' ? 200 : 404, created) : null,
      history: tried ? [{ attempt: 1, started: created, durationMs: 87, statusCode: status === 'completed' ? 200 : 404 }] : [],
    });
    queue.push(job);
    written.push({ jobId: job.jobId, created });
    if (i % 4 === 3) queue.push(jobOf({ jobId: crypto.randomUUID(), clientId: others[i % others.length] ?? client, created: new Date(base + i * 1_000 + 500).toISOString(), status: statusAt(i + 1) }));
  }
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let job = queue[next++]; job; job = queue[next++]) {
        await store.enlist(job.clientId, job.created, [job.jobId], job.expiresAt);
        const request = { url: job.service, method: 'POST' as const, headers: { 'Content-Type': 'application/json', 'Idempotency-Key': job.jobId }, body: '{"order":1234,"amount":"19.99"}' };
        // A job not yet tried is its request item alone, as submit writes it; a tried one has had
        // its state item made by its first write since (job-items.ts): both written as they lie.
        if (job.status === 'accepted') await store.create(job, request);
        else for (const Item of [requestItem(job, request), jobItem(job)]) await aws.documents.send(new PutCommand({ TableName: localTableNames.jobs, Item }));
      }
    }),
  );
  return { jobs: queue.length, seconds: (performance.now() - start) / 1000 };
}

interface Measured {
  page: string;
  p50: number;
  p95: number;
  readUnits: number;
  jobs: number;
  hasNext: boolean;
}

async function measure(page: string, query: ListQuery): Promise<Measured> {
  for (let i = 0; i < warmup; i++) await store.list(client, query);
  const times: number[] = [];
  let readUnits = 0;
  let last = { jobs: 0, hasNext: false };
  for (let i = 0; i < samples; i++) {
    units = 0;
    counting = true;
    const start = performance.now();
    const listed = await store.list(client, query);
    times.push(performance.now() - start);
    counting = false;
    readUnits = units;
    last = { jobs: listed.jobs.length, hasNext: listed.nextCursor !== null };
  }
  const summary = summarize(times);
  return { page, p50: summary.p50, p95: summary.p95, readUnits, ...last };
}

const fixed = (value: number, digits = 1) => value.toFixed(digits).padStart(7);
try {
  await provisionTables(aws.dynamodb);
  console.log(`bench/list: ${jobsOfClient} jobs of one client (and a quarter as many of others'), pages of ${limit}, ${samples} samples each after ${warmup} untimed`);
  for (const checkpoint of checkpoints) {
    const wrote = await writeUpTo(checkpoint);
    console.log(`\n${checkpoint} jobs of the client stored (${Math.round(checkpoint * 1.25)} in the table): wrote ${wrote.jobs} in ${wrote.seconds.toFixed(1)} s, ${Math.round(wrote.jobs / wrote.seconds)} jobs/s`);
    const middle = written[Math.floor(written.length / 2)];
    const cursor = middle ? encodeCursor({ clientId: client, created: middle.created, first: middle.jobId, seen: 1 }) : undefined;
    const rows = [
      await measure('first page', { limit }),
      await measure('middle page (cursor)', { limit, ...(cursor ? { cursor } : {}) }),
      await measure('status=failed, first', { limit, status: 'failed' }),
      await measure('status=failed, middle', { limit, status: 'failed', ...(cursor ? { cursor } : {}) }),
    ];
    console.log(`  ${'page'.padEnd(24)} ${'p50 ms'.padStart(7)} ${'p95 ms'.padStart(7)} ${'RCU'.padStart(7)} ${'jobs'.padStart(5)}  next`);
    for (const row of rows) console.log(`  ${row.page.padEnd(24)} ${fixed(row.p50)} ${fixed(row.p95)} ${fixed(row.readUnits)} ${String(row.jobs).padStart(5)}  ${row.hasNext ? 'yes' : 'no'}`);
  }
} finally {
  closeAwsClients(aws);
  await storage.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
