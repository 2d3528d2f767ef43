/**
 * The JobStore contract, held by both stores: the in-memory one the core's unit tests run on,
 * and the DynamoDB adapter on dynalite (in memory, one server per test). What one store accepts
 * the other must accept, and what one refuses the other must refuse, so that no core test passes
 * on behaviour the real store would not give. Then the sweeper and the dead-letter settle, whose
 * writes are conditional too, on both.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DynamoJobStore } from '../../lambdas/adapters/dynamo.ts';
import { DynamoSweepStateStore } from '../../lambdas/adapters/sweep-state.ts';
import { jobItem } from '../../lambdas/adapters/job-items.ts';
import { settleDeadLetter } from '../../lambdas/core/deliver.ts';
import { JobIsFinal } from '../../lambdas/core/errors.ts';
import { summarize, sweepShard, type AttemptOutput, type Job, type JobRequest } from '../../lambdas/core/job.ts';
import { cancelJob, replayJob, type ManageDeps } from '../../lambdas/core/manage.ts';
import {
  ConditionFailed,
  InvalidCursor,
  type IdempotencyRecord,
  type IndexMark,
  type JobChanges,
  type JobStore,
  type ListQuery,
  type SweepState,
  type SweepStateStore,
  type UnsettledJob,
} from '../../lambdas/core/ports.ts';
import { requeueUnsettled, scheduledSweep } from '../../lambdas/core/sweep.ts';
import { jobLimits, sweep, sweepShards } from '../../lib/definitions.ts';
import { acceptedJob, ManualClock, MemoryJobStore, MemorySweepStateStore, MemoryWorkQueue, testClient, ticking, unsettledIds } from '../support/memory.ts';
import { portSubjects, useSubject, type Subject } from '../support/subjects.ts';

/** A job store, and the sweeper's state store beside it (on DynamoDB, in the same table). */
interface Stores {
  store: JobStore;
  sweeps: SweepStateStore;
}

const subjects = portSubjects<Stores>(
  'MemoryJobStore',
  () => ({ store: new MemoryJobStore(), sweeps: new MemorySweepStateStore() }),
  'DynamoJobStore',
  (db) => ({ store: new DynamoJobStore(db.documents, db.table), sweeps: new DynamoSweepStateStore(db.documents, db.table) }),
);

/** Stores of their own for each test (for dynalite, a fresh server in memory), closed after it. */
const useStores = (subject: Subject<Stores>): (() => Stores) => useSubject(subject);

const now = Date.parse('2025-03-01T12:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
const clientId = '11111111111111';
const service = 'https://service.example.com/hooks';
const callback = 'https://callback.example.com/done';

/** A job id whose shard (its first hex digit) is `shard`. */
const idIn = (shard: string) => `${shard}${randomUUID().slice(1)}`;

/** JSON text that brotli shrinks well: the adapter keeps a body like it compressed. */
const jsonBody = JSON.stringify({ items: Array.from({ length: 12 }, (_, i) => ({ id: i, name: `item ${i}`, done: i % 2 === 0 })) });
/** Enough response headers to be kept compressed too. */
const answerHeaders: Record<string, string> = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store, no-cache, must-revalidate',
  'x-request-id': '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0',
  'strict-transport-security': 'max-age=63072000; includeSubDomains; preload',
  'retry-after': '30',
};

/** A job with every field set, the optional ones too, its instants apart from one another. */
function everyField(jobId: string): Job {
  return {
    jobId,
    clientId,
    created: iso(now - 60_000),
    lastUpdate: iso(now - 1_000),
    service: `${service}?order=7`,
    methodtype: 'PUT',
    callback,
    status: 'running',
    attempts: 2,
    maxAttempts: 7,
    timeoutMs: 2_500,
    output: {
      started: iso(now - 1_037),
      durationMs: 37,
      statusCode: 503,
      headers: answerHeaders,
      body: jsonBody,
      bodyEncoding: 'utf8',
      bodyBytes: Buffer.byteLength(jsonBody),
      truncated: false,
    },
    history: [
      { attempt: 1, started: iso(now - 30_000), durationMs: 12, error: 'ECONNRESET: the connection closed mid-response' },
      { attempt: 2, started: iso(now - 1_037), durationMs: 37, statusCode: 503 },
    ],
    nextAttemptAt: now + 30_000,
    leaseUntil: now - 5_000,
    notified: 'no',
    notifyoutput: '500',
    notifyAttempts: 1,
    callbackMaxAttempts: 3,
    notifyLeaseUntil: now - 2_000,
    nextNotifyAt: now + 1,
    sweep: sweepShard(jobId),
    expiresAt: Math.floor(now / 1000) + 30 * 86_400,
  };
}

const smallRequest = (job: Pick<Job, 'service' | 'methodtype' | 'jobId'>): JobRequest => ({
  url: job.service,
  method: job.methodtype,
  headers: { 'Content-Type': 'application/json', 'Idempotency-Key': job.jobId },
  body: '{"a":1}',
});

/** A request no compression brings under a write unit: the adapter stores it apart from the state. */
const largeRequest = (job: Pick<Job, 'service' | 'methodtype' | 'jobId'>): JobRequest => ({
  url: job.service,
  method: job.methodtype,
  headers: { 'Content-Type': 'text/plain', 'Idempotency-Key': job.jobId },
  body: randomBytes(3_000).toString('base64'),
});

/** A job as the store has it now; it must be there. */
async function found(store: JobStore, jobId: string): Promise<Job> {
  const job = await store.get(jobId);
  if (!job) throw new Error(`job ${jobId} is gone`);
  return job;
}

/** Creates an accepted job (with `fields`) and a small request, listed as a single submit lists it; returns it. */
async function created(store: JobStore, fields: Partial<Job> = {}, request?: JobRequest): Promise<Job> {
  const job = acceptedJob({ jobId: randomUUID(), created: iso(now - 60_000), lastUpdate: iso(now - 60_000), service, ...fields });
  await store.enlist(job.clientId, job.created, [job.jobId], job.expiresAt);
  await store.create(job, request ?? smallRequest(job));
  return job;
}

/** What a write that must fail threw; undefined when it did not fail. */
const thrown = (write: Promise<unknown>): Promise<unknown> =>
  write.then(
    () => undefined,
    (reason: unknown) => reason,
  );

/** Random printable text (base64: brotli keeps three quarters of it), fit for a header value. */
const noise = (chars: number) => randomBytes(Math.ceil((chars * 3) / 4)).toString('base64').slice(0, chars);
/** Text as hard to compress as text gets: random 7-bit characters, control characters too (brotli keeps 7/8 of it). */
const incompressible = (chars: number) => Buffer.from(randomBytes(chars).map((byte) => byte & 0x7f)).toString('latin1');

/** `count` headers named `prefix-N` totalling exactly `bytes` as the limits count them (name, value, ": " and CRLF). */
function headersOf(prefix: string, count: number, bytes: number): Record<string, string> {
  const headers: Record<string, string> = {};
  let left = bytes;
  for (let i = 0; i < count; i++) {
    const name = `${prefix}-${String(i).padStart(2, '0')}`;
    const size = i === count - 1 ? left : Math.floor(bytes / count);
    headers[name] = noise(size - Buffer.byteLength(name) - 4);
    left -= size;
  }
  return headers;
}

const headerBytes = (headers: Record<string, string>) => Object.entries(headers).reduce((sum, [name, value]) => sum + Buffer.byteLength(name) + Buffer.byteLength(value) + 4, 0);

/** An answer at every limit a job record keeps: 64 KiB of base64 body, 8 KiB of headers. */
function answerAtLimits(started: number): AttemptOutput {
  const body = randomBytes((jobLimits.responseBodyBytes * 3) / 4).toString('base64');
  return {
    started: iso(started),
    durationMs: 59_999,
    statusCode: 500,
    headers: headersOf('x-answer', 32, jobLimits.responseHeaderBytes),
    body,
    bodyEncoding: 'base64',
    bodyBytes: 10 * 1024 * 1024,
    truncated: true,
  };
}

/** The error text an output keeps at most (http.ts cuts it at 1024 characters). */
const errorAtLimit = () => noise(1024);

describe.each(subjects)('the job store contract: $name', (subject) => {
  const stores = useStores(subject);
  const store = () => stores().store;

  describe('writing and reading a job', () => {
    it('get returns a created job field for field: instants, the output with its long body and headers, the history, the callback', async () => {
      const job = everyField(randomUUID());
      // The fixture takes the adapter's compressed path: body and headers are stored as brotli.
      expect(jobItem(job)['output']).toMatchObject({ bodyCompression: 'br', headersCompression: 'br' });
      await store().create(job, smallRequest(job));
      expect(await store().get(job.jobId)).toStrictEqual(job);
    });

    it('a job without a callback, an output or any optional field comes back with its nulls and without the optional fields', async () => {
      const job = acceptedJob({ jobId: randomUUID() });
      await store().create(job, { url: job.service, method: 'POST', headers: {}, body: null });
      expect(await store().get(job.jobId)).toStrictEqual(job);
    });

    it('outputs are written as they were given: an empty answer, an error, a long answer; undefined fields are left out', async () => {
      const job = await created(store());
      const outputs: AttemptOutput[] = [
        { started: iso(now), durationMs: 3, statusCode: 204, headers: {}, body: '', bodyEncoding: 'utf8', bodyBytes: 0, truncated: false },
        { started: iso(now), durationMs: 10_000, error: 'timeout' },
        { started: iso(now), durationMs: 8, statusCode: 200, headers: answerHeaders, body: jsonBody, bodyEncoding: 'utf8', bodyBytes: jsonBody.length, truncated: false },
      ];
      for (const output of outputs) {
        await store().update(job.jobId, { output, lastUpdate: iso(now) }, {});
        expect((await found(store(), job.jobId)).output).toStrictEqual(output);
      }
      await store().update(job.jobId, { output: { started: iso(now), durationMs: 1, statusCode: undefined, error: 'refused' } }, {});
      expect((await found(store(), job.jobId)).output).toStrictEqual({ started: iso(now), durationMs: 1, error: 'refused' });
    });

    it('a create lands only where no job of its id is: one that comes again (a put that timed out and landed late, or a retry) never writes over the job\'s progress', async () => {
      const first = acceptedJob({ jobId: randomUUID(), service });
      const request = largeRequest(first);
      await store().create(first, request);
      await store().take(first.jobId, { status: 'started', attempts: 1 }, {});
      await store().create(first, largeRequest(first));
      expect(await store().take(first.jobId, { lastUpdate: first.lastUpdate }, {})).toStrictEqual({ job: { ...first, status: 'started', attempts: 1 }, request });
    });

    it('get of a job that was never created is undefined', async () => {
      expect(await store().get(randomUUID())).toBeUndefined();
    });

    it('take returns the request as it was given: one with a body and headers, one with neither, an empty body apart from none', async () => {
      const small = await created(store());
      const bare = await created(store(), { methodtype: 'GET' }, { url: service, method: 'GET', headers: {}, body: null });
      const empty = await created(store(), {}, { url: service, method: 'POST', headers: { 'X-Empty': '' }, body: '' });
      expect((await store().take(small.jobId, { attempts: 1 }, {})).request).toStrictEqual(smallRequest(small));
      expect((await store().take(bare.jobId, { attempts: 1 }, {})).request).toStrictEqual({ url: service, method: 'GET', headers: {}, body: null });
      expect((await store().take(empty.jobId, { attempts: 1 }, {})).request).toStrictEqual({ url: service, method: 'POST', headers: { 'X-Empty': '' }, body: '' });
    });

    it('instants are kept to the millisecond, and compared so; a value that is no instant is refused as an error', async () => {
      const job = await created(store(), { leaseUntil: now + 0.75 });
      expect((await found(store(), job.jobId)).leaseUntil).toBe(now);
      await store().update(job.jobId, { nextAttemptAt: now + 1_000.5 }, { expect: { leaseUntil: now + 0.25 } });
      expect((await found(store(), job.jobId)).nextAttemptAt).toBe(now + 1_000);
      await expect(store().update(job.jobId, { nextAttemptAt: Number.NaN }, {})).rejects.toBeInstanceOf(RangeError);
    });

    it('a request over a write unit comes back whole, body and headers', async () => {
      const job = acceptedJob({ jobId: randomUUID(), service });
      const request = largeRequest(job);
      await store().create(job, request);
      expect((await store().take(job.jobId, { status: 'started', attempts: 1 }, { expect: { status: 'accepted' } })).request).toStrictEqual(request);
    });

    it('lease and take return the job as written', async () => {
      const job = await created(store(), { callback, notified: 'no' });
      const taken = await store().take(job.jobId, { status: 'started', attempts: 1, leaseUntil: now + 12_000, lastUpdate: iso(now) }, {});
      expect(taken.job).toStrictEqual({ ...job, status: 'started', attempts: 1, leaseUntil: now + 12_000, lastUpdate: iso(now) });
      const leased = await store().lease(job.jobId, { notifyAttempts: 1, notifyLeaseUntil: now + 15_000, remove: ['leaseUntil'] }, {});
      expect(leased).toStrictEqual({ ...job, status: 'started', attempts: 1, lastUpdate: iso(now), notifyAttempts: 1, notifyLeaseUntil: now + 15_000 });
      expect(await store().get(job.jobId)).toStrictEqual(leased);
    });
  });

  describe('conditional writes', () => {
    it('a write whose expected values hold is applied; one whose values differ is ConditionFailed and writes nothing', async () => {
      const job = await created(store());
      await store().update(job.jobId, { status: 'started', attempts: 1 }, { expect: { status: 'accepted', attempts: 0 } });
      const written = await found(store(), job.jobId);
      expect(written).toMatchObject({ status: 'started', attempts: 1 });
      await expect(store().update(job.jobId, { status: 'running', attempts: 2 }, { expect: { status: 'started', attempts: 0 } })).rejects.toBeInstanceOf(ConditionFailed);
      await expect(store().take(job.jobId, { attempts: 2 }, { expect: { notified: 'no' } })).rejects.toBeInstanceOf(ConditionFailed);
      await expect(store().lease(job.jobId, { attempts: 2 }, { expect: { notifyAttempts: 1 } })).rejects.toBeInstanceOf(ConditionFailed);
      expect(await store().get(job.jobId)).toStrictEqual(written);
    });

    it('an expected undefined means the attribute is absent: it holds before the lease is taken and refuses after', async () => {
      const job = await created(store());
      const first = { expect: { status: 'accepted', attempts: 0, leaseUntil: undefined } };
      await store().take(job.jobId, { status: 'started', attempts: 1, leaseUntil: now + 1_000 }, first);
      await expect(store().take(job.jobId, { status: 'started', attempts: 1, leaseUntil: now + 2_000 }, { expect: { leaseUntil: undefined } })).rejects.toBeInstanceOf(
        ConditionFailed,
      );
      expect((await found(store(), job.jobId)).leaseUntil).toBe(now + 1_000);
    });

    it('an expected instant holds for the same instant only', async () => {
      const job = await created(store(), { status: 'started', attempts: 1, leaseUntil: now + 10_000 });
      await expect(store().update(job.jobId, { attempts: 2 }, { expect: { leaseUntil: now + 10_001 } })).rejects.toBeInstanceOf(ConditionFailed);
      await expect(store().update(job.jobId, { attempts: 2 }, { expect: { leaseUntil: now + 9_999 } })).rejects.toBeInstanceOf(ConditionFailed);
      await store().update(job.jobId, { leaseUntil: 0 }, { expect: { leaseUntil: now + 10_000 } });
      await store().update(job.jobId, { attempts: 2 }, { expect: { leaseUntil: 0 } });
      expect(await found(store(), job.jobId)).toMatchObject({ attempts: 2, leaseUntil: 0 });
    });

    it('statusIn holds when the status is one of those listed', async () => {
      const job = await created(store(), { status: 'running', attempts: 1 });
      await expect(store().update(job.jobId, { attempts: 2 }, { statusIn: ['completed', 'failed'] })).rejects.toBeInstanceOf(ConditionFailed);
      await store().update(job.jobId, { attempts: 2 }, { statusIn: ['accepted', 'started', 'running'] });
      await store().update(job.jobId, { attempts: 3 }, { statusIn: ['running'] });
      expect((await found(store(), job.jobId)).attempts).toBe(3);
    });

    it('leaseFree holds when the lease is absent or ran out by `now` (that instant included), and refuses while it runs', async () => {
      const free = await created(store());
      await store().update(free.jobId, { attempts: 1 }, { leaseFree: { lease: 'leaseUntil', now } });
      const held = await created(store(), { leaseUntil: now + 1, notifyLeaseUntil: now });
      await expect(store().take(held.jobId, { attempts: 1 }, { leaseFree: { lease: 'leaseUntil', now } })).rejects.toBeInstanceOf(ConditionFailed);
      await store().lease(held.jobId, { notifyAttempts: 1 }, { leaseFree: { lease: 'notifyLeaseUntil', now } });
      await store().take(held.jobId, { attempts: 1 }, { leaseFree: { lease: 'leaseUntil', now: now + 1 } });
      const expired = await created(store(), { leaseUntil: 0 });
      await store().update(expired.jobId, { attempts: 1 }, { leaseFree: { lease: 'leaseUntil', now } });
      expect((await found(store(), held.jobId)).attempts).toBe(1);
    });

    it('every part of a condition must hold', async () => {
      const job = await created(store(), { status: 'running', attempts: 1, leaseUntil: now - 1 });
      const changes = { attempts: 2 };
      const parts = { expect: { attempts: 1 }, statusIn: ['running'] as const, leaseFree: { lease: 'leaseUntil' as const, now } };
      await expect(store().update(job.jobId, changes, { ...parts, expect: { attempts: 0 } })).rejects.toBeInstanceOf(ConditionFailed);
      await expect(store().update(job.jobId, changes, { ...parts, statusIn: ['started'] })).rejects.toBeInstanceOf(ConditionFailed);
      await expect(store().update(job.jobId, changes, { ...parts, leaseFree: { lease: 'leaseUntil', now: now - 2 } })).rejects.toBeInstanceOf(ConditionFailed);
      await store().update(job.jobId, changes, parts);
      expect((await found(store(), job.jobId)).attempts).toBe(2);
    });

    it('a write to a job that does not exist is ConditionFailed, even without a condition, and creates nothing', async () => {
      const jobId = randomUUID();
      await expect(store().update(jobId, { status: 'failed', attempts: 1 }, {})).rejects.toBeInstanceOf(ConditionFailed);
      await expect(store().lease(jobId, { notifyAttempts: 1 }, {})).rejects.toBeInstanceOf(ConditionFailed);
      await expect(store().take(jobId, { attempts: 1 }, { expect: { leaseUntil: undefined } })).rejects.toBeInstanceOf(ConditionFailed);
      await expect(store().update(jobId, { remove: ['sweep'] }, {})).rejects.toBeInstanceOf(ConditionFailed);
      expect(await store().get(jobId)).toBeUndefined();
    });

    it('of two concurrent takes of the same job, exactly one wins; the other is ConditionFailed and the job holds the winner\'s lease', async () => {
      for (let round = 0; round < 5; round++) {
        const job = await created(store());
        const take = (leaseUntil: number) =>
          store().take(job.jobId, { status: 'started', attempts: 1, leaseUntil }, { expect: { status: 'accepted', attempts: 0, leaseUntil: undefined } });
        const results = await Promise.allSettled([take(now + 1_000), take(now + 2_000)]);
        const won = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
        const lost = results.flatMap((result) => (result.status === 'rejected' ? [result.reason] : []));
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(1);
        expect(lost[0]).toBeInstanceOf(ConditionFailed);
        expect(won[0]?.request).toStrictEqual(smallRequest(job));
        expect((await found(store(), job.jobId)).leaseUntil).toBe(won[0]?.job.leaseUntil);
      }
    });

    it('of eight concurrent takeovers of an expired lease, exactly one wins', async () => {
      const job = await created(store(), { status: 'running', attempts: 2, leaseUntil: now - 1 });
      const takers = Array.from({ length: 8 }, (_, i) =>
        store().take(
          job.jobId,
          { status: 'running', attempts: 2, leaseUntil: now + 1_000 + i, remove: ['nextAttemptAt'] },
          { expect: { attempts: 2, leaseUntil: now - 1 }, statusIn: ['accepted', 'started', 'running'], leaseFree: { lease: 'leaseUntil', now } },
        ),
      );
      const results = await Promise.allSettled(takers);
      const won = results.filter((result) => result.status === 'fulfilled');
      expect(won).toHaveLength(1);
      for (const result of results) if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(ConditionFailed);
    });
  });

  describe('changes', () => {
    it('remove deletes the listed fields; a field both set and listed keeps the value set; removing an absent field is no error', async () => {
      const job = everyField(randomUUID());
      await store().create(job, smallRequest(job));
      await store().update(job.jobId, { leaseUntil: now + 9, remove: ['leaseUntil', 'nextAttemptAt', 'nextNotifyAt'] }, {});
      const { nextAttemptAt: _next, nextNotifyAt: _notify, ...rest } = job;
      expect(await store().get(job.jobId)).toStrictEqual({ ...rest, leaseUntil: now + 9 });
      await store().update(job.jobId, { remove: ['nextAttemptAt', 'sweep', 'notifyLeaseUntil', 'leaseUntil'] }, {});
      const { leaseUntil: _lease, sweep: _sweep, notifyLeaseUntil: _notifyLease, ...bare } = rest;
      expect(await store().get(job.jobId)).toStrictEqual(bare);
    });

    it.each(['completed', 'failed', 'cancelled'] as const)('a job made %s keeps its request, small or large, for a replay to send again', async (status) => {
      const large = largeRequest({ jobId: randomUUID(), service, methodtype: 'POST' });
      const small = await created(store());
      for (const [job, request] of [[small, smallRequest(small)], [await created(store(), {}, large), large]] as const) {
        await store().update(job.jobId, { status: 'running', attempts: 1 }, {});
        await store().update(job.jobId, { status, attempts: 2, output: { started: iso(now), durationMs: 5, statusCode: 200 } }, {});
        const after = await store().getWithRequest(job.jobId);
        expect(after?.job).toStrictEqual({ ...job, status, attempts: 2, output: { started: iso(now), durationMs: 5, statusCode: 200 } });
        expect(after?.request).toStrictEqual(request);
        expect((await store().take(job.jobId, { lastUpdate: iso(now) }, {})).request).toStrictEqual(request);
      }
    });

    it('getWithRequest of a job that is not there is undefined', async () => {
      expect(await store().getWithRequest(randomUUID())).toBeUndefined();
    });

    it('a write that sets and removes nothing, or whose statusIn lists no status, is refused as an error, not as a lost condition', async () => {
      const job = await created(store());
      const refusals = [
        () => store().update(job.jobId, {}, {}),
        () => store().update(job.jobId, { remove: [] }, { expect: { status: 'accepted' } }),
        () => store().update(job.jobId, { attempts: undefined }, {}),
        () => store().update(job.jobId, { attempts: 1 }, { statusIn: [] }),
      ];
      for (const refusal of refusals) {
        const error = await thrown(refusal());
        expect(error).toBeInstanceOf(Error);
        expect(error).not.toBeInstanceOf(ConditionFailed);
      }
      expect(await store().get(job.jobId)).toStrictEqual(job);
    });

    it('an item over DynamoDB\'s 400 KB is refused as an error, on create and on update, and writes nothing', async () => {
      const job = await created(store());
      const huge: AttemptOutput = { started: iso(now), durationMs: 1, statusCode: 200, body: randomBytes(450 * 1024).toString('base64'), bodyEncoding: 'base64' };
      const refusedUpdate = await thrown(store().update(job.jobId, { output: huge }, {}));
      expect(refusedUpdate).toBeInstanceOf(Error);
      expect(refusedUpdate).not.toBeInstanceOf(ConditionFailed);
      expect(await store().get(job.jobId)).toStrictEqual(job);
      const other = acceptedJob({ jobId: randomUUID(), output: huge });
      await expect(store().create(other, smallRequest(other))).rejects.toThrow();
      expect(await store().get(other.jobId)).toBeUndefined();
    });
  });

  describe('remove', () => {
    it('remove deletes the job and its request, small or large; removing a job that is not there is no error', async () => {
      const small = await created(store());
      const large = await created(store(), {}, largeRequest({ jobId: 'x', service, methodtype: 'POST' }));
      for (const job of [small, large]) {
        await store().remove(job.jobId);
        expect(await store().get(job.jobId)).toBeUndefined();
        await expect(store().take(job.jobId, { attempts: 1 }, {})).rejects.toBeInstanceOf(ConditionFailed);
      }
      await expect(store().remove(randomUUID())).resolves.toBeUndefined();
    });

    it('a job created again after its removal has its new request, not the old one', async () => {
      const job = acceptedJob({ jobId: randomUUID(), service });
      await store().create(job, largeRequest(job));
      await store().remove(job.jobId);
      await store().create(job, smallRequest(job));
      expect((await store().take(job.jobId, { attempts: 1 }, {})).request).toStrictEqual(smallRequest(job));
    });
  });

  describe('the unsettled index', () => {
    /** One shard's entries, in the order the store gives them. */
    const shardEntries = async (shard: string, range?: { after?: IndexMark; upTo?: IndexMark }) => {
      const entries: UnsettledJob[] = [];
      for await (const entry of store().unsettled(shard, range)) entries.push(entry);
      return entries;
    };

    it('yields exactly the jobs carrying `sweep`, each in its own shard', async () => {
      const indexed: string[] = [];
      for (const shard of sweepShards) {
        const jobId = idIn(shard);
        await store().create(acceptedJob({ jobId, sweep: sweepShard(jobId) }), smallRequest({ jobId, service, methodtype: 'POST' }));
        indexed.push(jobId);
      }
      await created(store());
      const retrying = await created(store(), { status: 'running', attempts: 1 });
      await store().update(retrying.jobId, { nextAttemptAt: now + 1_000, sweep: sweepShard(retrying.jobId) }, {});
      indexed.push(retrying.jobId);
      expect(await unsettledIds(store())).toEqual(indexed.sort());
      for (const shard of sweepShards) {
        expect((await shardEntries(shard)).every((entry) => sweepShard(entry.jobId) === shard), shard).toBe(true);
      }
    });

    it('yields each job with the fields the sweeper decides on, as it is when found, and no other', async () => {
      const job = everyField(idIn('c'));
      await store().create(job, smallRequest(job));
      await store().update(job.jobId, { lastUpdate: iso(now), leaseUntil: now + 9_000 }, {});
      // Every field UnsettledJob names (Required: none may be left out), as the write left it.
      const expected: Required<UnsettledJob> = {
        jobId: job.jobId,
        created: job.created,
        status: 'running',
        notified: 'no',
        lastUpdate: iso(now),
        leaseUntil: now + 9_000,
        nextAttemptAt: now + 30_000,
        notifyLeaseUntil: now - 2_000,
        nextNotifyAt: now + 1,
      };
      expect(await shardEntries('c')).toStrictEqual([expected]);
    });

    it('yields a shard in the index\'s order, past `after` and up to `upTo`, whether or not their jobs are still there', async () => {
      const jobs: Job[] = [];
      for (let i = 0; i < 6; i++) jobs.push(await created(store(), { jobId: idIn('b'), created: iso(now - 60_000 + i * 1_000), sweep: 'b' }));
      const ids = (entries: UnsettledJob[]) => entries.map((entry) => entry.jobId);
      const all = jobs.map((job) => job.jobId);
      const mark = (i: number) => ({ created: jobs[i]!.created, jobId: jobs[i]!.jobId });
      expect(ids(await shardEntries('b'))).toEqual(all);
      expect(ids(await shardEntries('b', { after: mark(1) }))).toEqual(all.slice(2));
      expect(ids(await shardEntries('b', { upTo: mark(3) }))).toEqual(all.slice(0, 4));
      expect(ids(await shardEntries('b', { after: mark(0), upTo: mark(4) }))).toEqual(all.slice(1, 5));
      // A mark is a place in the index, not a job: it holds when its job has left.
      await store().update(jobs[2]!.jobId, { status: 'completed', remove: ['sweep'] }, {});
      await store().remove(jobs[4]!.jobId);
      expect(ids(await shardEntries('b', { after: mark(2) }))).toEqual([all[3], all[5]]);
      expect(ids(await shardEntries('b', { upTo: mark(4) }))).toEqual([all[0], all[1], all[3]]);
    });

    it('yields every job of a shard that holds more than a hundred', async () => {
      const ids = Array.from({ length: 105 }, () => idIn('a'));
      for (const jobId of ids) await store().create(acceptedJob({ jobId, sweep: 'a' }), { url: service, method: 'POST', headers: {}, body: null });
      expect(await unsettledIds(store())).toEqual(ids.sort());
    });

    it('stops yielding a job once its `sweep` is removed, or once the job is removed', async () => {
      const settling = await created(store(), { status: 'running', attempts: 1 });
      await store().update(settling.jobId, { sweep: sweepShard(settling.jobId) }, {});
      const removed = await created(store());
      await store().update(removed.jobId, { sweep: sweepShard(removed.jobId) }, {});
      expect(await unsettledIds(store())).toEqual([settling.jobId, removed.jobId].sort());
      await store().update(settling.jobId, { status: 'completed', remove: ['sweep'] }, {});
      await store().remove(removed.jobId);
      expect(await unsettledIds(store())).toEqual([]);
    });

    it('a `sweep` that names no shard of the index (not a job id\'s first hex digit) is never found', async () => {
      await created(store(), { sweep: 'x' });
      await created(store(), { sweep: 'A' });
      expect(await unsettledIds(store())).toEqual([]);
    });
  });

  describe('Idempotency-Keys', () => {
    const second = Math.floor(now / 1000);
    const claim = (jobId: string, fields: Partial<IdempotencyRecord> = {}): IdempotencyRecord => ({
      jobId,
      answer: JSON.stringify({ created: iso(now), job_id: jobId, status: 'accepted' }),
      state: 'pending',
      claimUntil: now + 25_000,
      expiresAt: second + 86_400,
      ...fields,
    });
    /** The record that holds the key now, as a claim of a job that never holds it is answered. */
    const holder = (key: string, at = now) => store().claimIdempotent(clientId, key, claim(`probe-${randomUUID()}`, { expiresAt: 0 }), at);

    it('a free key is claimed; a claim of another job is answered with the record that holds it, every field as written', async () => {
      const first = claim('job-1', { claimUntil: now + 25_001 });
      expect(await store().claimIdempotent(clientId, 'order-1', first, now)).toBeUndefined();
      expect(await store().claimIdempotent(clientId, 'order-1', claim('job-2'), now)).toStrictEqual(first);
      expect(await holder('order-1')).toStrictEqual(first);
    });

    it('a key is held through its expiresAt second; after it, a new claim takes it over', async () => {
      const first = claim('job-1', { expiresAt: second + 10 });
      await store().claimIdempotent(clientId, 'k', first, now);
      const lastHeld = (second + 10) * 1000 + 999;
      expect(await store().claimIdempotent(clientId, 'k', claim('job-2'), lastHeld)).toStrictEqual(first);
      expect(await store().claimIdempotent(clientId, 'k', claim('job-2'), lastHeld + 1)).toBeUndefined();
      expect(await holder('k', lastHeld + 1)).toStrictEqual(claim('job-2'));
    });

    it('a claim repeated by its own job is ours (a retried write whose first answer was lost)', async () => {
      await store().claimIdempotent(clientId, 'k', claim('job-1'), now);
      expect(await store().claimIdempotent(clientId, 'k', claim('job-1'), now + 1)).toBeUndefined();
      expect((await holder('k'))?.jobId).toBe('job-1');
    });

    it('replacing takes over the pending claim of the named job only: not a settled one, nor another job\'s', async () => {
      await store().claimIdempotent(clientId, 'abandoned', claim('job-1'), now);
      expect(await store().claimIdempotent(clientId, 'abandoned', claim('job-2'), now, 'job-3')).toStrictEqual(claim('job-1'));
      expect(await store().claimIdempotent(clientId, 'abandoned', claim('job-2'), now, 'job-1')).toBeUndefined();
      expect(await holder('abandoned')).toStrictEqual(claim('job-2'));

      await store().claimIdempotent(clientId, 'settled', claim('job-1'), now);
      await store().settleIdempotent(clientId, 'settled', 'job-1');
      expect(await store().claimIdempotent(clientId, 'settled', claim('job-2'), now, 'job-1')).toStrictEqual(claim('job-1', { state: 'done' }));
    });

    it('settle makes the claim done for its own job only; on a key nobody holds it writes nothing', async () => {
      await store().claimIdempotent(clientId, 'k', claim('job-1'), now);
      await store().settleIdempotent(clientId, 'k', 'job-2');
      expect((await holder('k'))?.state).toBe('pending');
      await store().settleIdempotent(clientId, 'k', 'job-1');
      expect(await holder('k')).toStrictEqual(claim('job-1', { state: 'done' }));

      await store().settleIdempotent(clientId, 'free', 'job-1');
      expect(await store().claimIdempotent(clientId, 'free', claim('job-2'), now)).toBeUndefined();
    });

    it('release lets go of its own job\'s pending claim only: not another job\'s, nor a settled one', async () => {
      await store().claimIdempotent(clientId, 'k', claim('job-1'), now);
      await store().releaseIdempotent(clientId, 'k', 'job-2');
      expect((await holder('k'))?.jobId).toBe('job-1');
      await store().releaseIdempotent(clientId, 'k', 'job-1');
      expect(await store().claimIdempotent(clientId, 'k', claim('job-2'), now)).toBeUndefined();

      await store().settleIdempotent(clientId, 'k', 'job-2');
      await store().releaseIdempotent(clientId, 'k', 'job-2');
      expect(await holder('k')).toStrictEqual(claim('job-2', { state: 'done' }));
      await expect(store().releaseIdempotent(clientId, 'never-claimed', 'job-1')).resolves.toBeUndefined();
    });

    it('a key belongs to its client: the same key of another client is free', async () => {
      await store().claimIdempotent(clientId, 'k', claim('job-1'), now);
      expect(await store().claimIdempotent('22222222222222', 'k', claim('job-2'), now)).toBeUndefined();
      expect((await holder('k'))?.jobId).toBe('job-1');
    });

    it('of eight concurrent claims of one key, exactly one wins and the others are answered with its record', async () => {
      const claims = Array.from({ length: 8 }, (_, i) => claim(`job-${i}`));
      const answers = await Promise.all(claims.map((mine) => store().claimIdempotent(clientId, 'contended', mine, now)));
      const winners = claims.filter((_, i) => answers[i] === undefined);
      expect(winners).toHaveLength(1);
      for (const answer of answers) if (answer !== undefined) expect(answer).toStrictEqual(winners[0]);
      expect(await holder('contended')).toStrictEqual(winners[0]);
    });

    it('of two concurrent takeovers of one abandoned claim, exactly one wins and the other is answered with its record', async () => {
      await store().claimIdempotent(clientId, 'abandoned', claim('job-0'), now);
      const claims = [claim('job-1'), claim('job-2')];
      const answers = await Promise.all(claims.map((mine) => store().claimIdempotent(clientId, 'abandoned', mine, now + 30_000, 'job-0')));
      const winners = claims.filter((_, i) => answers[i] === undefined);
      expect(winners).toHaveLength(1);
      expect(answers.filter((answer) => answer !== undefined)).toStrictEqual(winners);
    });
  });

  describe('item limits', () => {
    it('a job with every bounded field at its limit is stored, rewritten and read back whole, with its request', async () => {
      const jobId = randomUUID();
      const longUrl = (base: string) => `${base}/${'p'.repeat(jobLimits.urlChars - base.length - 1)}`;
      const history = Array.from({ length: jobLimits.attemptHistory }, (_, i) => ({ attempt: i + 1, started: iso(now - 60_000 + i), durationMs: 59_999, error: errorAtLimit() }));
      const job: Job = {
        ...everyField(jobId),
        service: longUrl(service),
        callback: longUrl(callback),
        attempts: jobLimits.maxAttempts.max,
        maxAttempts: jobLimits.maxAttempts.max,
        callbackMaxAttempts: jobLimits.callbackMaxAttempts.max,
        timeoutMs: jobLimits.timeoutMs.max,
        output: answerAtLimits(now - 60_000),
        history,
        notifyoutput: errorAtLimit(),
      };
      const request: JobRequest = {
        url: job.service,
        method: job.methodtype,
        headers: headersOf('x-header', jobLimits.maxHeaders, jobLimits.headerBytes),
        body: incompressible(jobLimits.requestBodyBytes),
      };
      expect(Object.keys(request.headers)).toHaveLength(jobLimits.maxHeaders);
      expect(headerBytes(request.headers)).toBe(jobLimits.headerBytes);
      expect(headerBytes(job.output?.headers ?? {})).toBe(jobLimits.responseHeaderBytes);
      expect(job.output?.body).toHaveLength(jobLimits.responseBodyBytes);

      await store().create(job, request);
      expect(await store().get(jobId)).toStrictEqual(job);
      const taken = await store().take(jobId, { leaseUntil: now + 70_000 }, { expect: { attempts: job.attempts } });
      expect(taken.request).toStrictEqual(request);

      // The write that records an attempt at the limits, and the one that makes the job final.
      const changes: JobChanges = { output: answerAtLimits(now), history: [...history.slice(1), { attempt: 21, started: iso(now), durationMs: 59_999, error: errorAtLimit() }], remove: ['leaseUntil'] };
      await store().update(jobId, changes, { expect: { leaseUntil: now + 70_000 } });
      const { leaseUntil: _lease, ...rest } = job;
      expect(await store().get(jobId)).toStrictEqual({ ...rest, output: changes.output, history: changes.history });
      await store().update(jobId, { status: 'failed', output: { started: iso(now), durationMs: 0, error: errorAtLimit() } }, {});
      expect((await found(store(), jobId)).status).toBe('failed');
    });
  });
});

describe.each(subjects)('the sweeper and the dead-letter settle on $name', (subject) => {
  const stores = useStores(subject);
  const store = () => stores().store;
  const world = () => ({ jobs: store(), queue: new MemoryWorkQueue(), clock: new ManualClock(now) });
  const abandoned = (kind: 'job' | 'callback') => `abandoned: the ${kind} message was dead-lettered after repeated failed deliveries`;

  describe('dead letters', () => {
    it('a dead-lettered job message settles a non-final job as failed, its reason as the output error, and queues its callback', async () => {
      const deps = world();
      const job = await created(deps.jobs, {
        status: 'running',
        attempts: 2,
        callback,
        notified: 'no',
        leaseUntil: now - 1_000,
        nextAttemptAt: now + 5_000,
        history: [{ attempt: 1, started: iso(now - 9_000), durationMs: 4, statusCode: 503 }],
      });
      await deps.jobs.update(job.jobId, { sweep: sweepShard(job.jobId) }, {});
      await settleDeadLetter(deps, 'job', job.jobId);
      const { leaseUntil: _lease, nextAttemptAt: _next, ...rest } = job;
      expect(await deps.jobs.get(job.jobId)).toStrictEqual({
        ...rest,
        status: 'failed',
        output: { started: iso(now), durationMs: 0, error: abandoned('job') },
        lastUpdate: iso(now),
        // Its callback is still to make: the sweeper keeps it in sight.
        sweep: sweepShard(job.jobId),
      });
      expect(deps.queue.sent).toEqual([{ kind: 'callback', jobId: job.jobId }]);
    });

    it('a dead-lettered job message of a job without a callback settles it as failed, out of the sweeper\'s index, and queues nothing', async () => {
      const deps = world();
      const job = await created(deps.jobs, { status: 'started', attempts: 1, leaseUntil: now + 60_000 });
      await deps.jobs.update(job.jobId, { sweep: sweepShard(job.jobId) }, {});
      await settleDeadLetter(deps, 'job', job.jobId);
      const { leaseUntil: _lease, ...rest } = job;
      expect(await deps.jobs.get(job.jobId)).toStrictEqual({ ...rest, status: 'failed', output: { started: iso(now), durationMs: 0, error: abandoned('job') }, lastUpdate: iso(now) });
      expect(await unsettledIds(deps.jobs)).toEqual([]);
      expect(deps.queue.sent).toEqual([]);
    });

    it('a dead-lettered job message of a final job whose callback is pending gives the callback up as "notification failed"', async () => {
      const deps = world();
      const output: AttemptOutput = { started: iso(now - 9_000), durationMs: 4, statusCode: 200 };
      const job = await created(deps.jobs, { status: 'completed', attempts: 1, output, callback, notified: 'no', notifyAttempts: 2, notifyoutput: '503' });
      await deps.jobs.update(job.jobId, { notifyLeaseUntil: now - 1, nextNotifyAt: now + 60_000, sweep: sweepShard(job.jobId) }, {});
      await settleDeadLetter(deps, 'job', job.jobId);
      expect(await deps.jobs.get(job.jobId)).toStrictEqual({ ...job, notified: 'notification failed', notifyoutput: abandoned('job') });
      expect(await unsettledIds(deps.jobs)).toEqual([]);
      expect(deps.queue.sent).toEqual([]);
    });

    it('a dead-lettered callback message settles the callback as "notification failed"', async () => {
      const deps = world();
      const job = await created(deps.jobs, { status: 'failed', attempts: 5, callback, notified: 'no', notifyAttempts: 1, notifyoutput: 'timeout' });
      await deps.jobs.update(job.jobId, { notifyLeaseUntil: now + 20_000, sweep: sweepShard(job.jobId) }, {});
      await settleDeadLetter(deps, 'callback', job.jobId);
      expect(await deps.jobs.get(job.jobId)).toStrictEqual({ ...job, notified: 'notification failed', notifyoutput: abandoned('callback') });
      expect(await unsettledIds(deps.jobs)).toEqual([]);
    });

    it('a settled job is left as it is, whichever message was dead-lettered; so is a job that is not there', async () => {
      const deps = world();
      const calledBack = await created(deps.jobs, { status: 'completed', attempts: 1, callback, notified: 'true', notifyAttempts: 1, notifyoutput: '200' });
      const noCallback = await created(deps.jobs, { status: 'failed', attempts: 3, output: { started: iso(now), durationMs: 1, statusCode: 400 } });
      const givenUp = await created(deps.jobs, { status: 'failed', attempts: 3, callback, notified: 'notification failed', notifyAttempts: 5, notifyoutput: '500' });
      for (const job of [calledBack, noCallback, givenUp]) {
        for (const kind of ['job', 'callback'] as const) await settleDeadLetter(deps, kind, job.jobId);
        expect(await deps.jobs.get(job.jobId)).toStrictEqual(job);
      }
      await expect(settleDeadLetter(deps, 'job', randomUUID())).resolves.toBeUndefined();
      expect(deps.queue.sent).toEqual([]);
    });

    it('a job whose own attempt settles it between the dead letter\'s read and its write keeps its own outcome', async () => {
      const deps = world();
      const job = await created(deps.jobs, { status: 'running', attempts: 2, callback, notified: 'no' });
      const jobs = deps.jobs;
      const settled = { status: 'completed', output: { started: iso(now), durationMs: 3, statusCode: 200 }, notified: 'true', notifyAttempts: 1 } as const;
      const racing = new Proxy(jobs, {
        get(target, property) {
          if (property === 'get') {
            return async (jobId: string) => {
              const read = await target.get(jobId);
              await target.update(jobId, settled, {});
              return read;
            };
          }
          const value: unknown = Reflect.get(target, property, target);
          return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        },
      });
      await settleDeadLetter({ ...deps, jobs: racing }, 'job', job.jobId);
      expect(await jobs.get(job.jobId)).toStrictEqual({ ...job, ...settled });
    });
  });

  describe('the sweeper', () => {
    /** Creates a job in the sweeper's index (unless `indexed` is false), as it stands after `fields`. */
    const inIndex = async (jobs: JobStore, fields: Partial<Job>, indexed = true) => {
      const job = await created(jobs, fields);
      if (indexed) await jobs.update(job.jobId, { sweep: sweepShard(job.jobId) }, {});
      return found(jobs, job.jobId);
    };
    const idle = sweep.idleMs;

    it('re-queues only the work idle past idleMs: a job by a job message, a final job\'s pending callback by a callback message', async () => {
      const deps = world();
      const old = iso(now - 2 * idle);
      const idleJob = await inIndex(deps.jobs, { status: 'running', attempts: 1, lastUpdate: old, nextAttemptAt: now - idle });
      const idleCallback = await inIndex(deps.jobs, { status: 'completed', attempts: 1, callback, notified: 'no', notifyAttempts: 1, lastUpdate: old, nextNotifyAt: now - idle - 1 });
      const interrupted = await inIndex(deps.jobs, { status: 'started', attempts: 1, lastUpdate: old, leaseUntil: now - idle - 1 });
      // Not yet: touched recently, due soon, a lease that ran out only lately, a callback retry still to come.
      await inIndex(deps.jobs, { status: 'accepted', lastUpdate: iso(now - idle + 1) });
      await inIndex(deps.jobs, { status: 'running', attempts: 1, lastUpdate: old, nextAttemptAt: now + 1_000 });
      await inIndex(deps.jobs, { status: 'started', attempts: 1, lastUpdate: old, leaseUntil: now - idle + 1 });
      await inIndex(deps.jobs, { status: 'failed', attempts: 1, callback, notified: 'no', lastUpdate: old, nextNotifyAt: now - 1 });
      // Never: a job outside the index.
      await inIndex(deps.jobs, { status: 'running', attempts: 1, lastUpdate: old }, false);

      const report = await requeueUnsettled(deps, { idleMs: idle });
      expect(report).toEqual({ jobs: 2, callbacks: 1, leasesExpired: 0 });
      const byId = (a: { jobId: string }, b: { jobId: string }) => a.jobId.localeCompare(b.jobId);
      expect([...deps.queue.sent].sort(byId)).toEqual(
        [
          { kind: 'job', jobId: idleJob.jobId },
          { kind: 'job', jobId: interrupted.jobId },
          { kind: 'callback', jobId: idleCallback.jobId },
        ].sort(byId),
      );
      // Re-queueing writes nothing.
      expect(await found(deps.jobs, interrupted.jobId)).toStrictEqual(interrupted);
    });

    it('takes settled jobs still in the index out of it, changing nothing else, and queues nothing for them', async () => {
      const deps = world();
      const settled = [
        await inIndex(deps.jobs, { status: 'completed', attempts: 1, callback, notified: 'true', notifyAttempts: 1 }),
        await inIndex(deps.jobs, { status: 'failed', attempts: 5 }),
        await inIndex(deps.jobs, { status: 'failed', attempts: 2, callback, notified: 'notification failed', notifyAttempts: 5 }),
      ];
      const pending = await inIndex(deps.jobs, { status: 'completed', attempts: 1, callback, notified: 'no' });
      expect(await requeueUnsettled(deps)).toEqual({ jobs: 0, callbacks: 1, leasesExpired: 0 });
      for (const job of settled) {
        const { sweep: _sweep, ...rest } = job;
        expect(await deps.jobs.get(job.jobId)).toStrictEqual(rest);
      }
      expect(await unsettledIds(deps.jobs)).toEqual([pending.jobId]);
      expect(deps.queue.sent).toEqual([{ kind: 'callback', jobId: pending.jobId }]);
    });

    it('with expireLeases, the leases taken before a crash are expired (0), so the next attempt takes the work at once', async () => {
      const deps = world();
      const leasedJob = await inIndex(deps.jobs, { status: 'started', attempts: 1, leaseUntil: now + 60_000 });
      const leasedCallback = await inIndex(deps.jobs, { status: 'completed', attempts: 1, callback, notified: 'no', notifyAttempts: 1, notifyLeaseUntil: now + 20_000 });
      const waiting = await inIndex(deps.jobs, { status: 'accepted' });

      // Without it, the leases stand.
      expect(await requeueUnsettled(deps)).toEqual({ jobs: 2, callbacks: 1, leasesExpired: 0 });
      expect(await found(deps.jobs, leasedJob.jobId)).toStrictEqual(leasedJob);
      deps.queue.clear();

      expect(await requeueUnsettled(deps, { expireLeases: true })).toEqual({ jobs: 2, callbacks: 1, leasesExpired: 2 });
      expect(await found(deps.jobs, leasedJob.jobId)).toStrictEqual({ ...leasedJob, leaseUntil: 0 });
      expect(await found(deps.jobs, leasedCallback.jobId)).toStrictEqual({ ...leasedCallback, notifyLeaseUntil: 0 });
      expect(await found(deps.jobs, waiting.jobId)).toStrictEqual(waiting);
      expect(deps.queue.sent).toHaveLength(3);
      // The takeover a job message then makes: the same attempt, under a lease of its own.
      const { job } = await deps.jobs.take(
        leasedJob.jobId,
        { status: 'started', attempts: 1, leaseUntil: now + 12_000 },
        { expect: { attempts: 1, leaseUntil: 0 }, statusIn: ['accepted', 'started', 'running'], leaseFree: { lease: 'leaseUntil', now } },
      );
      expect(job.leaseUntil).toBe(now + 12_000);
    });

    it('a run stopped by its deadline saves where; the next goes on from there round to there, so each round visits every job once', async () => {
      const clock = new ManualClock(now);
      // Each entry the walk takes costs a second: the deadline stops a run after so many.
      const jobs = ticking(store(), clock, 1_000);
      const deps = { jobs, queue: new MemoryWorkQueue(), clock, sweeps: stores().sweeps };
      const ring: string[] = [];
      for (const shard of ['0', '5', 'a', 'f']) {
        for (let i = 0; i < 2; i++) ring.push((await inIndex(store(), { jobId: idIn(shard), created: iso(now - 3 * idle + i), status: 'running', attempts: 1, lastUpdate: iso(now - 2 * idle) })).jobId);
      }
      const run = async (name: string, entries: number) => {
        deps.queue.clear();
        const report = await scheduledSweep(deps, { idleMs: idle, deadline: clock.now() + entries * 1_000 + 500, run: name, leaseMs: 75_000 });
        return { report, sent: deps.queue.sent.map((message) => message.jobId) };
      };

      const first = await run('run-1', 3);
      expect(first.sent).toEqual(ring.slice(0, 3));
      expect(first.report).toMatchObject({ jobs: 3, skipped: false, resumed: false, unfinished: true, leaseLost: false, resumeAt: { shard: '5', after: { jobId: ring[2] } } });
      const second = await run('run-2', 100);
      expect(second.sent).toEqual([...ring.slice(3), ...ring.slice(0, 3)]);
      expect(second.report).toMatchObject({ jobs: 8, resumed: true, unfinished: false });
      // Together, the round that run 1 began: every job once.
      expect([...first.sent, ...second.sent.slice(0, ring.length - first.sent.length)]).toEqual(ring);
      // A run that went round leaves the next to start where it started.
      const third = await run('run-3', 100);
      expect(third.sent).toEqual(second.sent);
      expect(third.report).toMatchObject({ resumed: false, unfinished: false });
    });

    it('a run finds the lease another run holds and does nothing; once that lease has run out, a run takes it', async () => {
      const deps = { ...world(), sweeps: stores().sweeps };
      const job = await inIndex(deps.jobs, { status: 'running', attempts: 1, lastUpdate: iso(now - 2 * idle) });
      expect('state' in (await deps.sweeps.claim('crashed-run', now, now + 75_000))).toBe(true);
      const options = { idleMs: idle, deadline: now + 45_000, run: 'run-2', leaseMs: 75_000 };
      expect(await scheduledSweep(deps, options)).toMatchObject({ skipped: true, jobs: 0, callbacks: 0 });
      expect(deps.queue.sent).toEqual([]);
      deps.clock.set(now + 75_000);
      expect(await scheduledSweep(deps, { ...options, deadline: now + 120_000 })).toMatchObject({ skipped: false, jobs: 1 });
      expect(deps.queue.sent).toEqual([{ kind: 'job', jobId: job.jobId }]);
    });
  });
});

describe.each(subjects)('the sweeper\'s state on $name', (subject) => {
  const stores = useStores(subject);
  const sweeps = () => stores().sweeps;

  it('a first claim takes the lease and finds no state: the walk starts at the first shard', async () => {
    expect(await sweeps().claim('run-1', now, now + 75_000)).toEqual({ state: { unfinished: false } });
  });

  it('while a run holds the lease, a claim is refused and writes nothing; from its expiry on, it is taken', async () => {
    await sweeps().claim('run-1', now, now + 75_000);
    expect(await sweeps().claim('run-2', now + 74_999, now + 150_000)).toHaveProperty('held');
    expect(await sweeps().release('run-2', { resumeAt: { shard: '3' }, unfinished: true }, now)).toBe(false);
    expect(await sweeps().claim('run-2', now + 75_000, now + 150_000)).toEqual({ state: { unfinished: false } });
  });

  it('its holder saves where the next run starts as it lets the lease go: the next claim gets both at once', async () => {
    const states: SweepState[] = [
      { resumeAt: { shard: 'c', after: { created: iso(now - 60_000), jobId: idIn('c') } }, unfinished: true },
      { resumeAt: { shard: '5' }, unfinished: false },
      { unfinished: false },
    ];
    await sweeps().claim('run-0', now, now + 75_000);
    for (const [i, state] of states.entries()) {
      expect(await sweeps().release(`run-${i}`, state, now + i)).toBe(true);
      expect(await sweeps().claim(`run-${i + 1}`, now + i + 1, now + 75_000)).toEqual({ state });
    }
  });

  it('a run whose lease ran out and was taken over can neither save over the newer run\'s state nor let its lease go', async () => {
    await sweeps().claim('run-1', now, now + 10_000);
    await sweeps().claim('run-2', now + 10_000, now + 85_000);
    expect(await sweeps().release('run-1', { resumeAt: { shard: '1' }, unfinished: true }, now + 20_000)).toBe(false);
    expect(await sweeps().claim('run-3', now + 20_000, now + 95_000)).toHaveProperty('held');
    expect(await sweeps().release('run-2', { resumeAt: { shard: '2' }, unfinished: true }, now + 20_000)).toBe(true);
    expect(await sweeps().claim('run-3', now + 20_000, now + 95_000)).toEqual({ state: { resumeAt: { shard: '2' }, unfinished: true } });
  });
});

describe.each(subjects)('kept attempts, listing, cancel and replay on $name', (subject) => {
  const stores = useStores(subject);
  const store = () => stores().store;
  const alice = testClient(clientId).client;
  const bob = testClient('22222222222222').client;
  const manage = (at = now): ManageDeps => ({ jobs: store(), queue: new MemoryWorkQueue(), clock: new ManualClock(at), retentionDays: 30, refuse: async () => undefined });

  describe('kept attempts', () => {
    it('lists the kept attempts and the job\'s output as its last, oldest first, each field as it was given; the same number kept again is overwritten', async () => {
      const job = await created(store(), { status: 'running', attempts: 3 });
      const outputs: AttemptOutput[] = [
        { started: iso(now - 3_000), durationMs: 10_000, error: 'timeout' },
        { started: iso(now - 2_000), durationMs: 37, statusCode: 503, headers: answerHeaders, body: jsonBody, bodyEncoding: 'utf8', bodyBytes: Buffer.byteLength(jsonBody), truncated: false },
        { started: iso(now - 1_000), durationMs: 3, statusCode: 200, headers: {}, body: '', bodyEncoding: 'utf8', bodyBytes: 0, truncated: false },
      ];
      await store().keepAttempt(job.jobId, { ...outputs[0]!, attempt: 1 }, job.expiresAt);
      await store().keepAttempt(job.jobId, { started: iso(now - 9_000), durationMs: 1, error: 'the first run of attempt 2', attempt: 2 }, job.expiresAt);
      await store().keepAttempt(job.jobId, { ...outputs[1]!, attempt: 2 }, job.expiresAt);
      const history = outputs.map((output, i) => summarize(i + 1, output));
      await store().update(job.jobId, { status: 'completed', output: outputs[2], history }, {});
      expect(await store().attempts(job.jobId)).toStrictEqual(outputs.map((output, i) => ({ ...output, attempt: i + 1 })));
    });

    it('a job\'s partition read for its attempts is the job\'s alone: none for a job not there, nor another job\'s', async () => {
      const job = await created(store());
      const other = await created(store(), { status: 'running', attempts: 1 });
      await store().keepAttempt(other.jobId, { started: iso(now), durationMs: 1, statusCode: 500, attempt: 1 }, other.expiresAt);
      expect(await store().attempts(job.jobId)).toStrictEqual([]);
      expect(await store().attempts(randomUUID())).toStrictEqual([]);
    });

    it('twenty attempts at every limit (more than one Query\'s megabyte) are listed whole', async () => {
      const job = await created(store(), { status: 'running', maxAttempts: 20 });
      const outputs = Array.from({ length: 20 }, (_, i) => answerAtLimits(now - 60_000 + i * 1_000));
      for (const [i, output] of outputs.slice(0, 19).entries()) await store().keepAttempt(job.jobId, { ...output, attempt: i + 1 }, job.expiresAt);
      await store().update(job.jobId, { status: 'failed', attempts: 20, output: outputs[19], history: outputs.map((output, i) => summarize(i + 1, output)) }, {});
      const listed = await store().attempts(job.jobId);
      expect(listed.map((attempt) => attempt.attempt)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect(listed).toStrictEqual(outputs.map((output, i) => ({ ...output, attempt: i + 1 })));
    });

    it('an attempt item is no job: neither the sweeper\'s index, a listing, nor getWithRequest takes it for one', async () => {
      const job = await created(store(), { status: 'running', attempts: 1 });
      await store().keepAttempt(job.jobId, { started: iso(now), durationMs: 1, statusCode: 500, attempt: 1 }, job.expiresAt);
      expect(await unsettledIds(store())).toEqual([]);
      expect((await store().list(clientId, { limit: 100 })).jobs.map((listed) => listed.jobId)).toEqual([job.jobId]);
      expect((await store().getWithRequest(job.jobId))?.job).toStrictEqual(job);
    });
  });

  describe('listing', () => {
    /** `count` jobs of `owner`, a second apart, the newest last, as fields(i) has them; their ids newest first. */
    async function many(count: number, fields: (i: number) => Partial<Job> = () => ({}), owner = clientId): Promise<string[]> {
      const ids: string[] = [];
      const base = now - 10 * 86_400_000;
      await Promise.all(
        Array.from({ length: count }, async (_, i) => {
          const job = acceptedJob({ jobId: randomUUID(), clientId: owner, created: iso(base + i * 1_000), ...fields(i) });
          await store().enlist(owner, job.created, [job.jobId], job.expiresAt);
          await store().create(job, smallRequest(job));
          ids[count - 1 - i] = job.jobId;
        }),
      );
      return ids;
    }
    /** Every page of a listing, followed to its end. */
    async function pages(query: Omit<ListQuery, 'cursor'>, owner = clientId): Promise<Job[][]> {
      const all: Job[][] = [];
      let cursor: string | undefined;
      do {
        const page = await store().list(owner, { ...query, ...(cursor ? { cursor } : {}) });
        all.push(page.jobs);
        cursor = page.nextCursor ?? undefined;
        if (all.length > 100) throw new Error('the listing never ended');
      } while (cursor);
      return all;
    }

    it('lists a client\'s jobs newest first, as they are, page by page, each once, never another client\'s, and ends with the last page', async () => {
      const ids = await many(47);
      await many(5, () => ({}), bob.clientId);
      const listed = await pages({ limit: 20 });
      expect(listed.map((page) => page.length)).toEqual([20, 20, 7]);
      expect(listed.flat().map((job) => job.jobId)).toEqual(ids);
      expect(listed[0]?.[0]).toStrictEqual(await found(store(), ids[0]!));
      expect((await pages({ limit: 47 })).map((page) => page.length)).toEqual([47]);
      expect((await pages({ limit: 100 }, bob.clientId)).flat()).toHaveLength(5);
      expect(await store().list('33333333333333', { limit: 20 })).toStrictEqual({ jobs: [], nextCursor: null });
    });

    it('with a status, a page holds only jobs of that status and looks at no more than 100 jobs, so it may hold none, with a cursor to go on', async () => {
      // 230 jobs; the failed ones are the newest, the 120th to 124th newest, and the oldest.
      const ids = await many(230, (i) => ({ status: i === 229 || (i >= 106 && i <= 110) || i === 0 ? 'failed' : 'completed' }));
      const failed = ids.filter((_, newest) => newest === 0 || (newest >= 119 && newest <= 123) || newest === 229);
      const listed = await pages({ status: 'failed', limit: 3 });
      expect(listed.map((page) => page.map((job) => job.jobId))).toEqual([[failed[0]], failed.slice(1, 4), failed.slice(4, 6), [failed[6]]]);
      expect(listed.flat().every((job) => job.status === 'failed')).toBe(true);
      // With no status, the same jobs page by the limit.
      expect((await pages({ limit: 100 })).map((page) => page.length)).toEqual([100, 100, 30]);
    });

    it('a status page that fills before it has looked at 100 jobs goes on from its last job', async () => {
      const ids = await many(30, (i) => ({ status: i % 2 === 0 ? 'running' : 'accepted' }));
      const listed = await pages({ status: 'running', limit: 4 });
      expect(listed.flat().map((job) => job.jobId)).toEqual(ids.filter((_, newest) => newest % 2 === 1));
      expect(listed.map((page) => page.length)).toEqual([4, 4, 4, 3]);
    });

    it('only enlisted jobs are listed: request, attempt, Idempotency-Key and sweeper items are no listing entries, and a job never enlisted is not listed', async () => {
      const job = acceptedJob({ jobId: randomUUID(), created: iso(now) });
      await store().enlist(clientId, job.created, [job.jobId], job.expiresAt);
      await store().create(job, largeRequest(job));
      const unlisted = acceptedJob({ jobId: randomUUID(), created: iso(now + 1) });
      await store().create(unlisted, smallRequest(unlisted));
      await store().keepAttempt(job.jobId, { started: iso(now), durationMs: 1, error: 'timeout', attempt: 1 }, job.expiresAt);
      await store().claimIdempotent(clientId, 'k', { jobId: job.jobId, answer: '{}', state: 'pending', claimUntil: now, expiresAt: Math.floor(now / 1000) + 60 }, now);
      await stores().sweeps.claim('run-1', now, now + 75_000);
      expect((await store().list(clientId, { limit: 100 })).jobs).toStrictEqual([job]);
    });

    it('a cursor that does not decode, or that another client\'s listing gave, is refused as InvalidCursor', async () => {
      await many(3);
      const { nextCursor } = await store().list(clientId, { limit: 1 });
      expect(nextCursor).toEqual(expect.any(String));
      await expect(store().list(bob.clientId, { limit: 1, cursor: nextCursor ?? '' })).rejects.toBeInstanceOf(InvalidCursor);
      const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const good = { client: clientId, created: iso(now), first: randomUUID(), seen: 1 };
      const bad = [
        '', '***', 'e30',
        cursorOf({ ...good, created: 'yesterday' }),
        // Made by the listing of the client index, before the listing entries.
        cursorOf({ client: clientId, created: iso(now), job: randomUUID() }),
        ...[0, -1, 1.5, 101, '1', null].map((seen) => cursorOf({ ...good, seen })),
        cursorOf({ ...good, first: '' }),
      ];
      await expect(store().list(clientId, { limit: 1, cursor: cursorOf(good) })).resolves.toBeDefined();
      for (const cursor of bad) {
        await expect(store().list(clientId, { limit: 1, cursor }), cursor).rejects.toBeInstanceOf(InvalidCursor);
      }
    });

    /** A batch's jobs: `count` of them, enlisted in one entry at one instant, then created (as fields(i) has them); their ids in the request's order. */
    async function batch(count: number, at: number, fields: (i: number) => Partial<Job> = () => ({}), owner = clientId): Promise<string[]> {
      const jobs = Array.from({ length: count }, (_, i) => acceptedJob({ jobId: randomUUID(), clientId: owner, created: iso(at), ...fields(i) }));
      await store().enlist(owner, iso(at), jobs.map((job) => job.jobId), Math.max(...jobs.map((job) => job.expiresAt)));
      for (const job of jobs) await store().create(job, smallRequest(job));
      return jobs.map((job) => job.jobId);
    }

    it('lists a batch\'s jobs, of one instant, in the request\'s order, between the jobs submitted before and after it', async () => {
      const [before] = await batch(1, now - 2_000);
      const batched = await batch(7, now - 1_000);
      const [after] = await batch(1, now);
      const listed = (await store().list(clientId, { limit: 100 })).jobs;
      expect(listed.map((job) => job.jobId)).toEqual([after, ...batched, before]);
      expect(new Set(listed.slice(1, 8).map((job) => job.created))).toEqual(new Set([iso(now - 1_000)]));
    });

    it('a cursor in the middle of a batch\'s entry goes on from the next job of it, each job once, across pages of any size', async () => {
      const older = await batch(3, now - 2_000);
      const batched = await batch(100, now - 1_000);
      const newer = await batch(2, now);
      const all = [...newer, ...batched, ...older];
      for (const limit of [2, 7, 33, 100]) {
        const listed = await pages({ limit });
        expect(listed.flat().map((job) => job.jobId), `limit ${limit}`).toEqual(all);
        expect(listed.map((page) => page.length), `limit ${limit}`).toEqual([...Array.from({ length: Math.floor(all.length / limit) }, () => limit), ...(all.length % limit ? [all.length % limit] : [])]);
      }
    });

    it('with a status, a batch\'s jobs of another status are left out, and a page still looks at no more than 100 jobs', async () => {
      const batched = await batch(100, now - 1_000, (i) => ({ status: i % 10 === 3 ? 'failed' : 'completed' }));
      const newer = await batch(50, now, () => ({ status: 'completed' }));
      const listed = await pages({ status: 'failed', limit: 4 });
      expect(listed.flat().map((job) => job.jobId)).toEqual(batched.filter((_, i) => i % 10 === 3));
      // The first page looks at the 50 newer and the batch's first 50: 5 failed, 4 of them on the page.
      expect(listed.map((page) => page.length)).toEqual([4, 4, 2]);
      expect(newer).toHaveLength(50);
    });

    it('an enlisted job that was never stored (its submit failed after the entry) or is gone is passed by, and the page goes on to the next', async () => {
      const [older] = await batch(1, now - 2_000);
      const jobs = [randomUUID(), randomUUID(), randomUUID()];
      await store().enlist(clientId, iso(now - 1_000), jobs, Math.floor(now / 1000) + 86_400);
      const stored = acceptedJob({ jobId: jobs[1]!, created: iso(now - 1_000) });
      await store().create(stored, smallRequest(stored));
      const first = await store().list(clientId, { limit: 1 });
      expect(first.jobs.map((job) => job.jobId)).toEqual([jobs[1]]);
      const second = await store().list(clientId, { limit: 1, cursor: first.nextCursor ?? '' });
      expect(second).toEqual({ jobs: [expect.objectContaining({ jobId: older })], nextCursor: null });
      expect((await store().list(clientId, { limit: 100 })).jobs.map((job) => job.jobId)).toEqual([jobs[1], older]);
    });

    it('a cursor holds when its job has gone since: it is a place in the listing', async () => {
      const ids = await many(5);
      const first = await store().list(clientId, { limit: 2 });
      await store().remove(ids[1]!);
      const second = await store().list(clientId, { limit: 2, cursor: first.nextCursor ?? '' });
      expect(second.jobs.map((job) => job.jobId)).toEqual(ids.slice(2, 4));
    });
  });

  describe('cancel and replay', () => {
    it('a cancel leaves the lease to its worker, whose record of its attempt (under that lease, status cancelled) lands; a second cancel is JobIsFinal', async () => {
      const job = await created(store(), { callback, notified: 'no' });
      await store().take(job.jobId, { status: 'started', attempts: 1, leaseUntil: now + 20_000 }, { expect: { status: 'accepted' } });
      const cancelled = await cancelJob(manage(), alice, job.jobId);
      expect(cancelled).toMatchObject({ status: 'cancelled', notified: 'n/a', leaseUntil: now + 20_000, callback });
      // The worker's write of its answer cannot make the cancelled job completed ...
      await expect(store().update(job.jobId, { status: 'completed' }, { expect: { leaseUntil: now + 20_000 }, statusIn: ['accepted', 'started', 'running'] })).rejects.toBeInstanceOf(ConditionFailed);
      // ... its record under its lease lands, on a job still cancelled.
      await store().update(job.jobId, { output: { started: iso(now), durationMs: 5, statusCode: 200 }, remove: ['leaseUntil'] }, { expect: { leaseUntil: now + 20_000, status: 'cancelled' } });
      expect(await found(store(), job.jobId)).toMatchObject({ status: 'cancelled', output: { statusCode: 200 } });
      await expect(cancelJob(manage(), alice, job.jobId)).rejects.toBeInstanceOf(JobIsFinal);
    });

    it('a replay of a final job reads its request back, whether it was kept beside the state or in an item of its own', async () => {
      for (const large of [false, true]) {
        const old = acceptedJob({ jobId: randomUUID(), service, callback, notified: 'no', maxAttempts: 3 });
        const request = large ? largeRequest(old) : smallRequest(old);
        await store().create(old, request);
        await store().update(old.jobId, { status: 'failed', attempts: 3, output: { started: iso(now), durationMs: 5, statusCode: 500 } }, {});
        const replayed = await replayJob(manage(now + (large ? 1_000 : 0)), alice, old.jobId);
        const fresh = await store().getWithRequest(replayed.job_id);
        expect(fresh?.job).toMatchObject({ status: 'accepted', replayOf: old.jobId, maxAttempts: 3, callback, notified: 'no' });
        expect(fresh?.request).toStrictEqual({ ...request, headers: { ...request.headers, 'Idempotency-Key': replayed.job_id } });
        expect((await store().list(clientId, { limit: 1 })).jobs[0]?.jobId).toBe(replayed.job_id);
      }
    });
  });
});
