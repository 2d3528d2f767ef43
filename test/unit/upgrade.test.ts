/**
 * A DATA_DIR kept across upgrades: items as the first layout (session 1: every field plain, by
 * its camelCase name) and the packed layout (session 2: short names and brotli blobs) wrote
 * them are rewritten in today's readable layout by the local stack at start, and keep working;
 * a jobs table whose unsettled index is keys-only (as every DATA_DIR made before the index
 * carried the sweeper's attributes has it: dynalite cannot change an index) still sweeps; a jobs
 * table without today's indexes is made again at start, every item kept, also across a start
 * killed halfway.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync } from 'node:zlib';
import { CreateTableCommand, DescribeTableCommand, ListTablesCommand, UpdateTableCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoJobStore } from '../../lambdas/adapters/dynamo.ts';
import { DynamoSweepStateStore } from '../../lambdas/adapters/sweep-state.ts';
import type { Job } from '../../lambdas/core/job.ts';
import { requeueUnsettled, scheduledSweep } from '../../lambdas/core/sweep.ts';
import { sweep, sweeperLeaseMs, tables } from '../../lib/definitions.ts';
import { localTableNames, provisionTables } from '../../local/provision.ts';
import { stackFileName, type StackFile } from '../../local/stack-file.ts';
import { layoutFileName, rebuildJobsTable, rebuildTableName, storeLayout, upgradeStore } from '../../local/upgrade.ts';
import { startDynalite, type LocalDynamo } from '../support/dynalite.ts';
import { acceptedJob, ManualClock, MemoryWorkQueue, unsettledIds } from '../support/memory.ts';

let db: LocalDynamo;
let dataDir: string;
beforeAll(async () => {
  db = await startDynalite();
  dataDir = mkdtempSync(join(tmpdir(), 'waas-upgrade-'));
});
afterAll(async () => {
  await db.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** The packed layout's blob: JSON, then a NUL and a text kept apart, brotli-compressed. */
const blob = (value: unknown, text?: string) => new Uint8Array(brotliCompressSync(Buffer.from(text === undefined ? JSON.stringify(value) : `${JSON.stringify(value)}\u0000${text}`)));

const put = (Item: Record<string, unknown>) => db.documents.send(new PutCommand({ TableName: db.table, Item }));
const raw = async (pk: string, sk: string) => (await db.documents.send(new GetCommand({ TableName: db.table, Key: { pk, sk } }))).Item;

const created = '2026-11-20T10:00:00.000Z';
const expiresAt = 1_800_000_000;
const spec = { clientId: '66666666666668', service: 'http://127.0.0.1:8080/post', methodtype: 'POST', callback: 'http://127.0.0.1:8081/cb', maxAttempts: 5, timeoutMs: 10_000, callbackMaxAttempts: 5 } as const;
const answered = { started: created, durationMs: 12, statusCode: 200, headers: { 'content-type': 'application/json' }, bodyEncoding: 'utf8', bodyBytes: 11, truncated: false } as const;
const ids = {
  firstRunning: '1a111111-1111-4111-8111-111111111111',
  firstSettled: '2b222222-2222-4222-8222-222222222222',
  packedAccepted: '3c333333-3333-4333-8333-333333333333',
  packedOwnRequest: '4d444444-4444-4444-8444-444444444444',
  packedCalledBack: '5e555555-5555-4555-8555-555555555555',
};

describe('upgradeStore', () => {
  it('rewrites the first and the packed layouts in today\'s, so every job reads and runs as before, and records the layout', async () => {
    // The first layout: a job waiting on a retry, with its request item; and a settled one.
    await put({ pk: ids.firstRunning, sk: 'job', ...spec, created, lastUpdate: created, status: 'running', attempts: 1, output: { ...answered, statusCode: 503, body: 'busy' }, history: [{ attempt: 1, started: created, durationMs: 12, statusCode: 503 }], nextAttemptAt: 1_764_000_000_000, notified: 'no', notifyoutput: null, notifyAttempts: 0, sweep: '1', expiresAt });
    await put({ pk: ids.firstRunning, sk: 'request', url: spec.service, method: 'POST', headers: { 'Content-Type': 'application/json', 'Idempotency-Key': ids.firstRunning }, body: '{"order":1}', expiresAt });
    await put({ pk: ids.firstSettled, sk: 'job', ...spec, callback: null, created, lastUpdate: created, status: 'completed', attempts: 1, output: { ...answered, body: '{"ok":true}' }, history: [], notified: 'n/a', notifyoutput: null, notifyAttempts: 0, expiresAt });
    // The packed layout: an accepted job with its request beside it, one with a request of its own, and one called back.
    const packedState = (status: string) => ({ sk: 'job', u: created, s: status, a: 0, n: 'no', na: 0, created, sweep: '3', expiresAt, spec: blob(spec) });
    await put({ pk: ids.packedAccepted, ...packedState('accepted'), request: blob({ headers: { 'Idempotency-Key': ids.packedAccepted } }, 'hello') });
    await put({ pk: ids.packedOwnRequest, ...packedState('accepted') });
    await put({ pk: ids.packedOwnRequest, sk: 'request', request: blob({ headers: { 'X-Big': 'y'.repeat(900) } }, 'z'.repeat(2_000)), expiresAt });
    await put({ pk: ids.packedCalledBack, sk: 'job', u: created, s: 'completed', a: 1, n: 'true', no: '200', na: 1, created, expiresAt, spec: blob(spec), result: blob({ output: answered, history: [{ attempt: 1, started: created, durationMs: 12, statusCode: 200 }] }, '{"ok":true}') });
    // An Idempotency-Key of either layout, from before keys had a state.
    await put({ pk: 'idem#66666666666668#order-1', sk: 'idem', jobId: ids.packedAccepted, answer: '{"job_id":"x"}', expiresAt });

    expect(await upgradeStore(db.documents, db.table, dataDir)).toEqual({ jobs: 5, keys: 1 });
    expect(readFileSync(join(dataDir, layoutFileName), 'utf8').trim()).toBe(String(storeLayout));

    const jobs = new DynamoJobStore(db.documents, db.table);
    const running = await jobs.get(ids.firstRunning);
    expect(running).toMatchObject<Partial<Job>>({ status: 'running', attempts: 1, maxAttempts: 5, nextAttemptAt: 1_764_000_000_000, output: { ...answered, statusCode: 503, body: 'busy' }, sweep: '1' });
    expect(await raw(ids.firstRunning, 'job')).toMatchObject({ status: 'running', next_attempt_at: new Date(1_764_000_000_000).toISOString() });
    // Five attempts is the contract's default, which today's layout leaves out.
    expect(await raw(ids.firstRunning, 'job')).not.toHaveProperty('maxAttempts');
    expect(await raw(ids.firstRunning, 'job')).not.toHaveProperty('max_attempts');
    const runningTaken = await jobs.take(ids.firstRunning, { attempts: 2 }, {});
    expect(runningTaken.request).toEqual({ url: spec.service, method: 'POST', headers: { 'Content-Type': 'application/json', 'Idempotency-Key': ids.firstRunning }, body: '{"order":1}' });
    // Its request item is today's now (headers and body; the URL and method are the job's).
    expect(await raw(ids.firstRunning, 'request')).toEqual({ pk: ids.firstRunning, sk: 'request', headers: { 'Content-Type': 'application/json', 'Idempotency-Key': ids.firstRunning }, body: '{"order":1}', expiresAt });

    expect(await jobs.get(ids.firstSettled)).toMatchObject({ status: 'completed', callback: null, notified: 'n/a', output: { body: '{"ok":true}' } });

    const accepted = await jobs.take(ids.packedAccepted, { status: 'started' }, { expect: { status: 'accepted', attempts: 0 } });
    expect(accepted.job).toMatchObject({ ...spec, status: 'started', attempts: 0, notified: 'no', lastUpdate: created, output: null, history: [] });
    expect(accepted.request).toEqual({ url: spec.service, method: 'POST', headers: { 'Idempotency-Key': ids.packedAccepted }, body: 'hello' });
    expect(await raw(ids.packedAccepted, 'job')).not.toHaveProperty('s');
    expect(await raw(ids.packedAccepted, 'job')).not.toHaveProperty('spec');

    const own = await jobs.take(ids.packedOwnRequest, { status: 'started' }, {});
    expect(own.request).toEqual({ url: spec.service, method: 'POST', headers: { 'X-Big': 'y'.repeat(900) }, body: 'z'.repeat(2_000) });

    expect(await jobs.get(ids.packedCalledBack)).toMatchObject({ status: 'completed', notified: 'true', notifyoutput: '200', notifyAttempts: 1, output: { ...answered, body: '{"ok":true}' } });
    expect(await raw('idem#66666666666668#order-1', 'idem')).toMatchObject({ state: 'done', jobId: ids.packedAccepted });
  });

  it('once the layout is recorded, a start reads nothing', async () => {
    await put({ pk: '6f666666-6666-4666-8666-666666666666', sk: 'job', u: created, s: 'accepted', a: 0, n: 'n/a', na: 0, created, expiresAt, spec: blob(spec) });
    expect(await upgradeStore(db.documents, db.table, dataDir)).toEqual({ jobs: 0, keys: 0 });
  });
});

describe('a jobs table whose unsettled index is keys-only (a DATA_DIR made before the index carried the sweeper\'s attributes)', () => {
  const index = tables.jobs.unsettledIndex;
  let old: LocalDynamo;
  let oldDir: string;
  beforeAll(async () => {
    // The jobs table as the earlier version made it; provisioning keeps it, as it keeps a DATA_DIR's.
    old = await startDynalite({
      beforeProvision: async (dynamodb) => {
        await dynamodb.send(
          new CreateTableCommand({
            TableName: localTableNames.jobs,
            BillingMode: 'PAY_PER_REQUEST',
            KeySchema: [
              { AttributeName: 'pk', KeyType: 'HASH' },
              { AttributeName: 'sk', KeyType: 'RANGE' },
            ],
            AttributeDefinitions: ['pk', 'sk', index.partitionKey, index.sortKey].map((AttributeName) => ({ AttributeName, AttributeType: 'S' })),
            GlobalSecondaryIndexes: [
              {
                IndexName: index.name,
                KeySchema: [
                  { AttributeName: index.partitionKey, KeyType: 'HASH' },
                  { AttributeName: index.sortKey, KeyType: 'RANGE' },
                ],
                Projection: { ProjectionType: 'KEYS_ONLY' },
              },
            ],
          }),
        );
      },
    });
    oldDir = mkdtempSync(join(tmpdir(), 'waas-keys-only-'));
    const jobs = new DynamoJobStore(old.documents, old.table);
    for (const job of [accepted, idle, callingBack, settled]) await jobs.create(job, { url: 'https://service.example.com', method: 'POST', headers: {}, body: null });
  });
  afterAll(async () => {
    await old.close();
    rmSync(oldDir, { recursive: true, force: true });
  });

  const now = Date.parse('2026-11-20T12:00:00.000Z');
  const long = new Date(now - 2 * sweep.idleMs).toISOString();
  const accepted = acceptedJob({ jobId: '0a000000-0000-4000-8000-000000000000', lastUpdate: long, created: long, sweep: '0' });
  const idle = acceptedJob({ jobId: '1b111111-1111-4111-8111-111111111111', status: 'running', attempts: 1, lastUpdate: long, created: long, sweep: '1' });
  const callingBack = acceptedJob({ jobId: '2c222222-2222-4222-8222-222222222222', status: 'completed', attempts: 1, callback: 'https://callback.example.com', notified: 'no', lastUpdate: long, created: long, sweep: '2' });
  const settled = acceptedJob({ jobId: '3d333333-3333-4333-8333-333333333333', status: 'failed', attempts: 5, lastUpdate: long, created: long, sweep: '3' });

  it('is kept as it is, and its entries carry no attribute but the keys', async () => {
    const { Table } = await old.client.send(new DescribeTableCommand({ TableName: old.table }));
    expect(Table?.GlobalSecondaryIndexes?.[0]?.Projection).toEqual({ ProjectionType: 'KEYS_ONLY' });
    const { Items } = await old.documents.send(
      new QueryCommand({ TableName: old.table, IndexName: index.name, KeyConditionExpression: '#shard = :shard', ProjectionExpression: '#pk, #status', ExpressionAttributeNames: { '#shard': index.partitionKey, '#pk': 'pk', '#status': 'status' }, ExpressionAttributeValues: { ':shard': '0' } }),
    );
    expect(Items).toEqual([{ pk: accepted.jobId }]);
  });

  it('still sweeps: each entry is read from its job, idle work is queued, settled work leaves the index, and the runs resume', async () => {
    const jobs = new DynamoJobStore(old.documents, old.table);

    const queue = new MemoryWorkQueue();
    const clock = new ManualClock(now);
    expect(await requeueUnsettled({ jobs, queue, clock }, { idleMs: sweep.idleMs })).toEqual({ jobs: 2, callbacks: 1, leasesExpired: 0 });
    expect(queue.sent).toEqual([
      { kind: 'job', jobId: accepted.jobId },
      { kind: 'job', jobId: idle.jobId },
      { kind: 'callback', jobId: callingBack.jobId },
    ]);
    expect(await unsettledIds(jobs)).toEqual([accepted.jobId, idle.jobId, callingBack.jobId]);

    queue.clear();
    const sweeps = new DynamoSweepStateStore(old.documents, old.table);
    const run = { idleMs: sweep.idleMs, run: 'run-1', leaseMs: sweeperLeaseMs, deadline: now + 45_000 };
    expect(await scheduledSweep({ jobs, queue, clock, sweeps }, run)).toMatchObject({ skipped: false, jobs: 2, callbacks: 1, unfinished: false });
    expect(queue.sent).toHaveLength(3);
    // It went round from the first shard: the next run starts there again.
    expect(await sweeps.claim('run-2', now + 60_000, now + 60_000 + sweeperLeaseMs)).toEqual({ state: { unfinished: false } });
    await sweeps.release('run-2', { unfinished: false }, now + 60_000);
  });

  it('the sweeper\'s state item and a kept attempt are no jobs: the operator\'s `jobs list` (by status too, cancelled included) and the local upgrade pass them by', async () => {
    const sweeps = new DynamoSweepStateStore(old.documents, old.table);
    await sweeps.claim('run-2', now, now + sweeperLeaseMs);
    expect(await sweeps.release('run-2', { resumeAt: { shard: '7', after: { created: long, jobId: '7e777777-7777-4777-8777-777777777777' } }, unfinished: true }, now)).toBe(true);
    const state = await old.documents.send(new GetCommand({ TableName: old.table, Key: tables.jobs.sweeperState }));
    // Plain attributes, as an operator reads them in the console.
    expect(state.Item).toEqual({ ...tables.jobs.sweeperState, resume_shard: '7', resume_after_created: long, resume_after_job: '7e777777-7777-4777-8777-777777777777', last_run_unfinished: true, last_run: 'run-2', last_saved: new Date(now).toISOString() });

    expect(await upgradeStore(old.documents, old.table, oldDir)).toEqual({ jobs: 0, keys: 0 });
    expect((await old.documents.send(new GetCommand({ TableName: old.table, Key: tables.jobs.sweeperState }))).Item).toEqual(state.Item);

    // The CLI finds this test's store as it finds a running local stack's: by the stack file.
    mkdirSync(join(oldDir, 'dynamodb'), { recursive: true });
    const file: StackFile = { pid: process.pid, url: 'http://127.0.0.1:1', dynamodbEndpoint: old.endpoint, sqsEndpoint: 'http://127.0.0.1:1', tables: localTableNames };
    writeFileSync(join(oldDir, stackFileName), JSON.stringify(file));
    // A cancelled job, and an attempt kept apart: an item of a job's partition that is no job.
    const jobs = new DynamoJobStore(old.documents, old.table);
    const cancelled = acceptedJob({ jobId: '4e444444-4444-4444-8444-444444444444', status: 'cancelled', attempts: 1, created: long, lastUpdate: long });
    await jobs.create(cancelled, { url: 'https://service.example.com', method: 'POST', headers: {}, body: null });
    await jobs.keepAttempt(idle.jobId, { started: long, durationMs: 3, statusCode: 503, attempt: 1 }, idle.expiresAt);
    // Run apart from this process's event loop, which serves the store the CLI reads.
    const cli = async (...args: string[]) => {
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/jobs.ts', ...args], { cwd: join(import.meta.dirname, '..', '..'), env: { ...process.env, DATA_DIR: oldDir }, encoding: 'utf8', timeout: 30_000 });
      return (JSON.parse(stdout) as Array<{ jobId: string }>).map((job) => job.jobId).sort();
    };
    expect(await cli('list', '--limit', '1000')).toEqual([accepted, idle, callingBack, settled, cancelled].map((job) => job.jobId));
    expect(await cli('list', '--status', 'cancelled')).toEqual([cancelled.jobId]);
  });
});

/** The `client` index of the jobs table before the listing entries: a client's jobs by `created`, keys only. */
const clientIndex = { name: 'client', partitionKey: 'clientId', sortKey: 'created' } as const;

describe('a jobs table whose indexes are not today\'s (a DATA_DIR made before GET /v1/jobs, or before the listing entries): dynalite cannot add or drop an index, so the table is made again', () => {
  const unsettled = tables.jobs.unsettledIndex;
  const todays = [tables.jobs.dueIndex.name, unsettled.name].sort();
  const keys = (hash: string, range: string) => [
    { AttributeName: hash, KeyType: 'HASH' as const },
    { AttributeName: range, KeyType: 'RANGE' as const },
  ];
  type Index = { name: string; partitionKey: string; sortKey: string; projected?: readonly string[] };
  /** A dynalite whose jobs table an earlier version made, with these indexes (each keys only unless it projects some). */
  const withIndexes = (indexes: readonly Index[]) =>
    startDynalite({
      beforeProvision: async (dynamodb) => {
        await dynamodb.send(
          new CreateTableCommand({
            TableName: localTableNames.jobs,
            BillingMode: 'PAY_PER_REQUEST',
            KeySchema: keys('pk', 'sk'),
            AttributeDefinitions: [...new Set(['pk', 'sk', ...indexes.flatMap((index) => [index.partitionKey, index.sortKey])])].map((AttributeName) => ({ AttributeName, AttributeType: 'S' })),
            GlobalSecondaryIndexes: indexes.map((index) => ({
              IndexName: index.name,
              KeySchema: keys(index.partitionKey, index.sortKey),
              Projection: index.projected ? { ProjectionType: 'INCLUDE', NonKeyAttributes: [...index.projected] } : { ProjectionType: 'KEYS_ONLY' },
            })),
          }),
        );
      },
    });
  /** The jobs table of the version before the listing entries: today's indexes and the `client` index, keys only (as lib/definitions.ts described it then). */
  const withClientIndex = () => withIndexes([unsettled, clientIndex, tables.jobs.dueIndex]);
  /** The jobs table of the version before GET /v1/jobs: the unsettled index as it is now, no client index. */
  const previousVersion = () => withIndexes([unsettled]);

  const base = Date.parse('2026-11-01T00:00:00.000Z');
  /** Sixty jobs of two clients (some with large requests, kept attempts, Idempotency-Keys) and the sweeper's state: every kind of item. */
  async function filled(old: LocalDynamo): Promise<Record<string, unknown>[]> {
    const jobs = new DynamoJobStore(old.documents, old.table);
    for (let i = 0; i < 60; i++) {
      const job = acceptedJob({ jobId: `${(i % 16).toString(16)}${String(i).padStart(7, '0')}-0000-4000-8000-000000000000`, clientId: i % 3 === 0 ? '22222222222222' : '11111111111111', created: new Date(base + i * 1_000).toISOString(), status: i % 2 === 0 ? 'running' : 'completed', attempts: 1, sweep: i % 2 === 0 ? (i % 16).toString(16) : undefined });
      await jobs.create(job, { url: job.service, method: 'POST', headers: { 'Idempotency-Key': job.jobId }, body: i % 5 === 0 ? 'x'.repeat(3_000) : '{"n":1}' });
      if (i % 4 === 0) await jobs.keepAttempt(job.jobId, { started: job.created, durationMs: 3, statusCode: 503, attempt: 1 }, job.expiresAt);
      if (i % 7 === 0) await jobs.claimIdempotent(job.clientId, `order-${i}`, { jobId: job.jobId, answer: '{}', state: 'done', claimUntil: base, expiresAt: 1_900_000_000 }, base);
    }
    const sweeps = new DynamoSweepStateStore(old.documents, old.table);
    await sweeps.claim('run-1', base, base + sweeperLeaseMs);
    await sweeps.release('run-1', { resumeAt: { shard: '3' }, unfinished: true }, base);
    return everything(old, old.table);
  }
  const key = (item: Record<string, unknown>) => `${String(item['pk'])} ${String(item['sk'])}`;
  async function everything(old: LocalDynamo, table: string): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await old.documents.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start }));
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    return items.sort((a, b) => key(a).localeCompare(key(b)));
  }
  const indexNames = async (old: LocalDynamo) => ((await old.client.send(new DescribeTableCommand({ TableName: old.table }))).Table?.GlobalSecondaryIndexes ?? []).map((index) => index.IndexName).sort();
  const tableNames = async (old: LocalDynamo) => ((await old.client.send(new ListTablesCommand({}))).TableNames ?? []).sort();

  /** Every item of `before` kept as it was, beside one listing entry per job (and nothing else), and no table left over. */
  async function expectKeptAndListed(old: LocalDynamo, before: Record<string, unknown>[]): Promise<void> {
    const after = await everything(old, old.table);
    const entries = after.filter((item) => String(item['pk']).startsWith(tables.jobs.listing.prefix));
    expect(after.filter((item) => !entries.includes(item))).toEqual(before);
    // A job's state item, or for a job not yet tried its request item with the submitted state.
    const states = before.filter((item) => item['sk'] === 'job');
    const jobs = [...states, ...before.filter((item) => item['sk'] === 'request' && item['status'] !== undefined && !states.some((state) => state['pk'] === item['pk']))];
    expect(entries.map((entry) => entry['jobs']).sort()).toEqual(jobs.map((job) => [job['pk']]).sort());
    for (const entry of entries) {
      const job = jobs.find((each) => each['pk'] === (entry['jobs'] as string[])[0]);
      expect(entry).toEqual({ pk: `${tables.jobs.listing.prefix}${String(job?.['clientId'])}`, sk: `${String(job?.['created'])}#${String(job?.['pk'])}`, clientId: job?.['clientId'], created: job?.['created'], jobs: [job?.['pk']], expiresAt: job?.['expiresAt'] });
    }
    expect(await tableNames(old)).toEqual(Object.values(localTableNames).sort());
  }

  it('with the `client` index of before the listing entries, is made again without it, every item kept, and each job listed in an entry of its own, newest first, page by page', async () => {
    const old = await withClientIndex();
    const dir = mkdtempSync(join(tmpdir(), 'waas-listing-'));
    try {
      expect(await indexNames(old)).toEqual([clientIndex.name, ...todays].sort());
      const before = await filled(old);
      writeFileSync(join(dir, layoutFileName), '3\n');
      await upgradeStore(old.documents, old.table, dir);
      expect(await indexNames(old)).toEqual(todays);
      await expectKeptAndListed(old, before);
      expect(readFileSync(join(dir, layoutFileName), 'utf8')).toBe(`${storeLayout}\n`);

      const jobs = new DynamoJobStore(old.documents, old.table);
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await jobs.list('11111111111111', { limit: 7, ...(cursor ? { cursor } : {}) });
        seen.push(...page.jobs.map((job) => job.created));
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      expect(seen).toHaveLength(40);
      expect(seen).toEqual([...seen].sort().reverse());
      expect((await jobs.list('22222222222222', { limit: 100 })).jobs).toHaveLength(20);
      // A start after it does nothing more: no entry is written twice.
      const listed = await everything(old, old.table);
      expect(await upgradeStore(old.documents, old.table, dir)).toEqual({ jobs: 0, keys: 0 });
      expect(await everything(old, old.table)).toEqual(listed);
    } finally {
      await old.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /** Throws, as a start killed there would stop, at the `nth` command `matches` picks; the rest pass. */
  function crashingAt(old: LocalDynamo, matches: (command: { constructor: { name: string }; input: Record<string, unknown> }) => boolean, nth = 1): Parameters<typeof rebuildJobsTable>[0] {
    let seen = 0;
    return {
      send: ((command: { constructor: { name: string }; input: Record<string, unknown> }) => {
        if (matches(command) && ++seen === nth) return Promise.reject(new Error('killed'));
        return old.documents.send(command as never);
      }) as LocalDynamo['documents']['send'],
    };
  }
  const into = (table: string) => (command: { constructor: { name: string }; input: Record<string, unknown> }) =>
    command.constructor.name === 'BatchWriteCommand' && table in ((command.input['RequestItems'] as Record<string, unknown> | undefined) ?? {});

  it('is made again with today\'s indexes, every item kept as it was, and its jobs listed by client; a later start finds nothing to do', async () => {
    const old = await previousVersion();
    const dir = mkdtempSync(join(tmpdir(), 'waas-client-index-'));
    try {
      expect(await indexNames(old)).toEqual([unsettled.name]);
      // dynalite cannot add an index: it refuses a Create without a throughput (which an
      // on-demand table has none of), and takes one with it without doing anything.
      const client = clientIndex;
      const adding = (ProvisionedThroughput?: { ReadCapacityUnits: number; WriteCapacityUnits: number }) =>
        new UpdateTableCommand({
          TableName: old.table,
          AttributeDefinitions: [client.partitionKey, client.sortKey].map((AttributeName) => ({ AttributeName, AttributeType: 'S' })),
          GlobalSecondaryIndexUpdates: [
            {
              Create: {
                IndexName: client.name,
                KeySchema: [
                  { AttributeName: client.partitionKey, KeyType: 'HASH' },
                  { AttributeName: client.sortKey, KeyType: 'RANGE' },
                ],
                Projection: { ProjectionType: 'KEYS_ONLY' },
                ...(ProvisionedThroughput ? { ProvisionedThroughput } : {}),
              },
            },
          ],
        });
      await expect(old.client.send(adding())).rejects.toThrow(/provisionedThroughput/);
      await old.client.send(adding({ ReadCapacityUnits: 1, WriteCapacityUnits: 1 }));
      expect(await indexNames(old)).toEqual([unsettled.name]);
      const before = await filled(old);
      expect(before.length).toBeGreaterThan(60);

      await upgradeStore(old.documents, old.table, dir);
      expect(await indexNames(old)).toEqual(todays);
      await expectKeptAndListed(old, before);

      const jobs = new DynamoJobStore(old.documents, old.table);
      const listed = await jobs.list('11111111111111', { limit: 100 });
      expect(listed.jobs).toHaveLength(40);
      expect(listed.jobs.map((job) => job.created)).toEqual([...listed.jobs.map((job) => job.created)].sort().reverse());
      expect(await unsettledIds(jobs)).toHaveLength(30);

      const made = (await old.client.send(new DescribeTableCommand({ TableName: old.table }))).Table?.CreationDateTime;
      expect(await rebuildJobsTable(old.documents, old.table)).toBeUndefined();
      expect((await old.client.send(new DescribeTableCommand({ TableName: old.table }))).Table?.CreationDateTime).toEqual(made);
    } finally {
      await old.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    ['while it copied the items out, before the copy was whole', into(rebuildTableName(localTableNames.jobs)), 2],
    ['just before it deleted the old table', (command: { constructor: { name: string }; input: Record<string, unknown> }) => command.constructor.name === 'DeleteTableCommand' && command.input['TableName'] === localTableNames.jobs, 1],
    ['once the old table was deleted, before the new one was made', (command: { constructor: { name: string }; input: Record<string, unknown> }) => command.constructor.name === 'CreateTableCommand' && command.input['TableName'] === localTableNames.jobs, 1],
    ['while it copied the items back', into(localTableNames.jobs), 2],
  ] as const)('a start killed %s: the next start goes on, and every item is kept', async (_, where, nth) => {
    const old = await previousVersion();
    try {
      const before = await filled(old);
      await expect(rebuildJobsTable(crashingAt(old, where, nth), old.table)).rejects.toThrow('killed');
      // The next start provisions first (an absent jobs table is made, empty), then upgrades.
      await provisionTables(old.client);
      expect(await rebuildJobsTable(old.documents, old.table)).toBe(before.length);
      expect(await everything(old, old.table)).toEqual(before);
      expect(await indexNames(old)).toEqual(todays);
      expect(await tableNames(old)).toEqual(Object.values(localTableNames).sort());
    } finally {
      await old.close();
    }
  });
});
