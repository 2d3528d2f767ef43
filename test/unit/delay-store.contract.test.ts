/**
 * The due index's contract, held by both implementations: the in-memory one the core's tests run
 * on, and the DynamoDB adapter on dynalite (the jobs table as lib/definitions.ts describes it,
 * the `due` GSI with it), with the job store beside each; then one release run on both.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DynamoDueIndex } from '../../lambdas/adapters/due-index.ts';
import { DynamoJobStore } from '../../lambdas/adapters/dynamo.ts';
import { bucketOf } from '../../lambdas/core/delay.ts';
import { ConditionFailed, type DueIndex, type JobStore } from '../../lambdas/core/ports.ts';
import { releaseDue } from '../../lambdas/core/release.ts';
import { acceptedJob, ManualClock, MemoryDueIndex, MemoryJobStore, MemoryWorkQueue } from '../support/memory.ts';
import { portSubjects, useSubject } from '../support/subjects.ts';

interface Stores {
  store: JobStore;
  due: DueIndex;
}

const subjects = portSubjects<Stores>(
  'MemoryDueIndex',
  () => {
    const store = new MemoryJobStore();
    return { store, due: new MemoryDueIndex(store) };
  },
  'DynamoDueIndex',
  (db) => ({ store: new DynamoJobStore(db.documents, db.table), due: new DynamoDueIndex(db.documents, db.table) }),
);

const now = Date.parse('2027-03-01T09:00:00.000Z');
const request = { url: 'https://service.example.com/hook', method: 'POST' as const, headers: {}, body: null };
const idIn = (shard: string) => `${shard}${randomUUID().slice(1)}`;

/** A job delayed to `startAt`, in its bucket, as submit writes one. */
async function delayed(store: JobStore, startAt: number, fields: { jobId?: string; timeoutMs?: number } = {}) {
  const jobId = fields.jobId ?? idIn('7');
  const job = acceptedJob({ jobId, nextAttemptAt: startAt, due: bucketOf(startAt, jobId.charAt(0)), ...(fields.timeoutMs ? { timeoutMs: fields.timeoutMs } : {}) });
  await store.create(job, request);
  return job;
}

async function all(due: DueIndex, bucket: string) {
  const found = [];
  for await (const job of due.due(bucket)) found.push(job);
  return found;
}

describe.each(subjects)('$name', (subject) => {
  const stores = useSubject(subject);

  it('finds a bucket\'s jobs in the order they fall due, with their timeouts, and no other bucket\'s', async () => {
    const { store, due } = stores();
    const later = await delayed(store, now + 20 * 60_000 + 50_000, { jobId: idIn('7') });
    const sooner = await delayed(store, now + 20 * 60_000 + 1_000, { jobId: idIn('7'), timeoutMs: 3_000 });
    await delayed(store, now + 21 * 60_000, { jobId: idIn('7') });
    await delayed(store, now + 20 * 60_000, { jobId: idIn('8') });
    await store.create(acceptedJob({ jobId: idIn('7'), nextAttemptAt: now + 20 * 60_000 + 2_000 }), request);
    const bucket = bucketOf(now + 20 * 60_000, '7');
    expect(bucket).toBe('2027-03-01T09:20Z#7');
    expect(await all(due, bucket)).toEqual([
      { jobId: sooner.jobId, due: bucket, startAt: now + 20 * 60_000 + 1_000, timeoutMs: 3_000 },
      { jobId: later.jobId, due: bucket, startAt: now + 20 * 60_000 + 50_000, timeoutMs: 10_000 },
    ]);
  });

  it('a job marked released, cancelled or taken leaves its bucket; a second mark is refused', async () => {
    const { store, due } = stores();
    const startAt = now + 30 * 60_000;
    const bucket = bucketOf(startAt, '7');
    const [released, cancelled, taken] = [await delayed(store, startAt), await delayed(store, startAt + 1), await delayed(store, startAt + 2)];
    expect(await due.released(released.jobId, bucket)).toBe(true);
    expect(await due.released(released.jobId, bucket)).toBe(false);
    expect(await due.released(cancelled.jobId, bucketOf(startAt, '8'))).toBe(false);
    await store.update(cancelled.jobId, { status: 'cancelled', remove: ['nextAttemptAt', 'due'] }, {});
    await store.take(taken.jobId, { status: 'started', attempts: 1, leaseUntil: startAt + 25_000, remove: ['nextAttemptAt', 'due'] }, { expect: { status: 'accepted' }, dueBy: startAt + 2 });
    expect(await all(due, bucket)).toEqual([]);
    expect(await store.get(released.jobId)).toMatchObject({ status: 'accepted', nextAttemptAt: startAt });
    expect((await store.get(released.jobId))?.due).toBeUndefined();
  });

  it('a job is not taken before its time: the condition that it be due refuses, and holds once it is', async () => {
    const { store } = stores();
    const job = await delayed(store, now + 60_000);
    const take = (at: number) => store.take(job.jobId, { status: 'started', attempts: 1, leaseUntil: at + 25_000, remove: ['nextAttemptAt', 'due'] }, { expect: { status: 'accepted', attempts: 0, leaseUntil: undefined }, dueBy: at });
    await expect(take(now + 59_999)).rejects.toBeInstanceOf(ConditionFailed);
    const { job: held } = await take(now + 60_000);
    expect(held).toMatchObject({ status: 'started', attempts: 1 });
    expect(held.nextAttemptAt).toBeUndefined();
    // A job never delayed is due at any time.
    const plain = acceptedJob({ jobId: idIn('3') });
    await store.create(plain, request);
    await expect(store.take(plain.jobId, { status: 'started', attempts: 1 }, { dueBy: 0 })).resolves.toBeDefined();
  });

  it('keeps the release\'s progress forward only', async () => {
    const { due } = stores();
    expect(await due.releasedThrough()).toBeUndefined();
    await due.saveReleasedThrough(now + 60_000);
    await due.saveReleasedThrough(now);
    expect(await due.releasedThrough()).toBe(now + 60_000);
  });

  it('one release run sends the jobs due within its horizon, with what is left of their wait, and no later one', async () => {
    const { store, due } = stores();
    const clock = new ManualClock(now);
    const queue = new MemoryWorkQueue();
    const soon = await delayed(store, now + 14 * 60_000 + 30_000, { jobId: idIn('a') });
    await delayed(store, now + 15 * 60_000, { jobId: idIn('b') });
    const report = await releaseDue({ due, queue, clock }, { deadline: now + 45_000 });
    expect(report).toEqual({ released: 1, unfinished: false, through: now + 14 * 60_000 });
    expect(queue.sent).toEqual([{ kind: 'job', jobId: soon.jobId, leaseMs: 25_000, delayMs: 14 * 60_000 + 30_000 }]);
    expect(await due.releasedThrough()).toBe(now + 14 * 60_000);
  });
});
