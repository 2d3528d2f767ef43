/**
 * Managing jobs (core/manage.ts), on the in-memory store: each call sees the calling client's
 * jobs alone; a cancel is final and answers 409 on a final job; a replay is a new job with the
 * old one's request, stored and queued as submit does it. The store's side (the same calls on
 * DynamoDB) is in job-store.contract.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { InvalidRequest, JobIsFinal, JobNotFound, Unavailable } from '../../lambdas/core/errors.ts';
import { publicRecord, type Job } from '../../lambdas/core/job.ts';
import { cancelJob, getJob, jobAttempts, jobRequest, listJobs, replayJob, type ManageDeps } from '../../lambdas/core/manage.ts';
import { ConditionFailed, encodeCursor } from '../../lambdas/core/ports.ts';
import { submit } from '../../lambdas/core/submit.ts';
import { acceptedJob, answer, ManualClock, MemoryJobStore, MemoryWorkQueue, testClient } from '../support/memory.ts';

const service = 'https://service.example.com/hook';
const callback = 'https://callback.example.com/done';

function setup(overrides: Partial<ManageDeps> = {}) {
  const clock = new ManualClock(Date.parse('2025-03-04T05:06:07.089Z'));
  const jobs = new MemoryJobStore();
  const queue = new MemoryWorkQueue();
  const told: string[] = [];
  const telemetry = { count: (metric: string, value = 1) => void told.push(`${metric} ${value}`), duration: () => undefined };
  const deps: ManageDeps = { jobs, queue, clock, retentionDays: 30, refuse: async () => undefined, telemetry, ...overrides };
  const alice = testClient('11111111111111').client;
  const bob = testClient('22222222222222').client;
  /** A job submitted by alice (or `as`), as POST /webhook takes it. */
  const submitted = async (fields: Record<string, unknown> = {}, key?: string, as = alice) => (await submit(deps, as, { service, ...fields }, key)).job_id;
  const found = async (jobId: string): Promise<Job> => {
    const job = await jobs.get(jobId);
    if (!job) throw new Error(`job ${jobId} is gone`);
    return job;
  };
  return { clock, jobs, queue, told, deps, alice, bob, submitted, found };
}

/** What a call that must fail threw. */
const thrown = (call: Promise<unknown>): Promise<unknown> =>
  call.then(
    () => {
      throw new Error('it did not fail');
    },
    (reason: unknown) => reason,
  );

describe('every call sees the calling client\'s jobs alone', () => {
  it('an unknown, a malformed or another client\'s job is JobNotFound, for each call, and nothing is written', async () => {
    const { deps, alice, bob, submitted, jobs, queue } = setup();
    const bobs = await submitted({}, undefined, bob);
    queue.clear();
    const writes = jobs.updates.length;
    for (const jobId of [randomUUID(), 'not-a-job', '', `${bobs} `, bobs]) {
      for (const call of [getJob, jobAttempts, jobRequest, cancelJob, replayJob]) {
        expect(await thrown(call(deps, alice, jobId)), `${call.name} ${jobId}`).toBeInstanceOf(JobNotFound);
      }
    }
    expect(jobs.updates.length).toBe(writes);
    expect(queue.sent).toEqual([]);
    expect((await listJobs(deps, alice, { limit: 20 })).jobs).toEqual([]);
  });

  it('a job id is read in any case, as GET /status reads it', async () => {
    const { deps, alice, submitted } = setup();
    const jobId = await submitted();
    expect((await getJob(deps, alice, jobId.toUpperCase())).jobId).toBe(jobId);
  });
});

describe('cancelJob', () => {
  it('cancels a job not yet tried: cancelled, no callback to make, out of the sweeper\'s index, its callback URL kept; JobsCancelled told once', async () => {
    const { deps, alice, submitted, told, clock } = setup({ indexEveryJob: true });
    const jobId = await submitted({ callback });
    told.length = 0;
    clock.advance(1_000);
    const cancelled = await cancelJob(deps, alice, jobId);
    expect(cancelled).toMatchObject({ jobId, status: 'cancelled', notified: 'n/a', callback, attempts: 0, lastUpdate: new Date(clock.now()).toISOString() });
    expect(cancelled.sweep).toBeUndefined();
    expect(publicRecord(cancelled)).toMatchObject({ status: 'cancelled', notified: 'n/a', callback });
    expect(await getJob(deps, alice, jobId)).toEqual(cancelled);
    expect(told).toEqual(['JobsCancelled 1']);
  });

  it('cancels a job waiting on a retry: its scheduled attempt is gone', async () => {
    const { deps, alice, jobs, clock } = setup();
    const job = acceptedJob({ jobId: randomUUID(), clientId: alice.clientId, status: 'running', attempts: 1, nextAttemptAt: clock.now() + 60_000, sweep: 'a' });
    await jobs.create(job, { url: service, method: 'POST', headers: {}, body: null });
    const cancelled = await cancelJob(deps, alice, job.jobId);
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.nextAttemptAt).toBeUndefined();
  });

  it.each(['completed', 'failed', 'cancelled'] as const)('a %s job is JobIsFinal (409), says so, and is left as it is', async (status) => {
    const { deps, alice, jobs, told } = setup();
    const job = acceptedJob({ jobId: randomUUID(), clientId: alice.clientId, status, attempts: 1 });
    await jobs.create(job, { url: service, method: 'POST', headers: {}, body: null });
    const refused = await thrown(cancelJob(deps, alice, job.jobId));
    expect(refused).toBeInstanceOf(JobIsFinal);
    expect(refused).toMatchObject({ statusCode: 409, message: `the job is already ${status}; a final job cannot be cancelled` });
    expect(await jobs.get(job.jobId)).toEqual(job);
    expect(told).toEqual([]);
  });

  it('a job made final between the cancel\'s read and its write is JobIsFinal: the write is conditional on a job not final', async () => {
    const { deps, alice, jobs, submitted } = setup();
    const jobId = await submitted();
    const get = jobs.get.bind(jobs);
    jobs.get = async (id) => {
      const read = await get(id);
      jobs.get = get;
      await jobs.update(id, { status: 'completed', attempts: 1, output: answer(200) }, {});
      return read;
    };
    expect(await thrown(cancelJob(deps, alice, jobId))).toEqual(new JobIsFinal('completed'));
    expect((await jobs.get(jobId))?.status).toBe('completed');
  });

  it('a cancel whose write landed although its answer was lost (the store\'s client retried it) is answered with the cancelled job', async () => {
    const { deps, alice, jobs, submitted, told } = setup();
    const jobId = await submitted();
    told.length = 0;
    const lease = jobs.lease.bind(jobs);
    jobs.lease = async (id, changes, condition) => {
      await lease(id, changes, condition);
      throw new ConditionFailed('the retried write found its own first write');
    };
    expect(await cancelJob(deps, alice, jobId)).toMatchObject({ status: 'cancelled' });
    expect(told).toEqual(['JobsCancelled 1']);
  });
});

describe('replayJob', () => {
  it('makes a new job with the old one\'s request, callback, attempts and timeouts, queued then stored as submit does it; the old job is untouched', async () => {
    const { deps, alice, jobs, queue, submitted, clock, told } = setup();
    const oldId = await submitted({ methodtype: 'PUT', headers: { Authorization: 'Bearer svc' }, data: { a: 1 }, callback, max_attempts: 3, timeout_ms: 2_500, callback_max_attempts: 7 });
    const old = await jobs.get(oldId);
    queue.clear();
    told.length = 0;
    clock.advance(5_000);
    const replayed = await replayJob(deps, alice, oldId);
    expect(replayed).toEqual({ job_id: expect.stringMatching(/^[0-9a-f-]{36}$/), created: new Date(clock.now()).toISOString(), status: 'accepted', replay_of: oldId });
    expect(replayed.job_id).not.toBe(oldId);
    const fresh = await jobs.getWithRequest(replayed.job_id);
    expect(fresh?.job).toMatchObject({
      clientId: alice.clientId,
      status: 'accepted',
      attempts: 0,
      service,
      methodtype: 'PUT',
      callback,
      maxAttempts: 3,
      timeoutMs: 2_500,
      callbackMaxAttempts: 7,
      notified: 'no',
      replayOf: oldId,
      created: replayed.created,
      expiresAt: Math.floor(clock.now() / 1000) + 30 * 86_400,
    });
    // The Idempotency-Key we added to the old request was the old job's id: the new one's is its own.
    expect(fresh?.request).toEqual({ url: service, method: 'PUT', headers: { Authorization: 'Bearer svc', 'Content-Type': 'application/json', 'Idempotency-Key': replayed.job_id }, body: '{"a":1}' });
    expect(publicRecord(fresh?.job as Job)).toMatchObject({ jobId: replayed.job_id, replay_of: oldId });
    expect(queue.sent).toEqual([{ kind: 'job', jobId: replayed.job_id, leaseMs: 2_500 + 15_000 }]);
    expect(await jobs.get(oldId)).toEqual(old);
    expect(told).toEqual(['JobsAccepted 1']);
  });

  it('keeps an Idempotency-Key the client set itself', async () => {
    const { deps, alice, jobs, submitted } = setup();
    const oldId = await submitted({ headers: { 'idempotency-key': 'order-7' } });
    const replayed = await replayJob(deps, alice, oldId);
    expect((await jobs.getWithRequest(replayed.job_id))?.request?.headers).toEqual({ 'idempotency-key': 'order-7' });
  });

  it.each(['accepted', 'running', 'completed', 'failed', 'cancelled'] as const)('replays a %s job', async (status) => {
    const { deps, alice, jobs, submitted } = setup();
    const oldId = await submitted();
    if (status !== 'accepted') await jobs.update(oldId, { status, attempts: 1, output: answer(status === 'completed' ? 200 : 500) }, {});
    const replayed = await replayJob(deps, alice, oldId);
    expect(await jobs.get(replayed.job_id)).toMatchObject({ status: 'accepted', replayOf: oldId, output: null, history: [] });
    expect((await jobs.get(oldId))?.status).toBe(status);
  });

  it('a replay of a replay names the job it replays', async () => {
    const { deps, alice, submitted } = setup();
    const first = await submitted();
    const second = await replayJob(deps, alice, first);
    const third = await replayJob(deps, alice, second.job_id);
    expect(third.replay_of).toBe(second.job_id);
  });

  it('in the local stack\'s store, the new job is in the sweeper\'s index from the start, as a submitted one is', async () => {
    const { deps, alice, jobs, submitted } = setup({ indexEveryJob: true });
    const replayed = await replayJob(deps, alice, await submitted());
    expect((await jobs.get(replayed.job_id))?.sweep).toBe(replayed.job_id.charAt(0));
  });

  it.each([
    ['url', service],
    ['callback', callback],
  ])('an egress policy that now refuses its %s is InvalidRequest naming the field, and nothing is stored or queued', async (field, refused) => {
    const { deps, alice, jobs, queue, submitted } = setup();
    const oldId = await submitted({ callback });
    queue.clear();
    deps.refuse = async (url) => (url === refused ? 'resolves to a private address' : undefined);
    const error = await thrown(replayJob(deps, alice, oldId));
    expect(error).toBeInstanceOf(InvalidRequest);
    expect((error as Error).message).toBe(`${field}: resolves to a private address`);
    expect(jobs.jobs.size).toBe(1);
    expect(queue.sent).toEqual([]);
  });

  it('a queue that fails is Unavailable and keeps nothing; so is a store that fails after the message went, whose job is taken back', async () => {
    const { deps, alice, jobs, queue, submitted, told } = setup();
    const oldId = await submitted();
    told.length = 0;
    queue.failure = new Error('SQS is down');
    expect(await thrown(replayJob(deps, alice, oldId))).toBeInstanceOf(Unavailable);
    expect(jobs.jobs.size).toBe(1);
    queue.failure = undefined;
    queue.clear();
    const create = jobs.create.bind(jobs);
    jobs.create = async (job, request) => {
      await create(job, request);
      throw new Error('the answer of the write was lost');
    };
    expect(await thrown(replayJob(deps, alice, oldId))).toBeInstanceOf(Unavailable);
    // Its message went, and finds no job: it is dropped once the API can no longer be writing it.
    expect(queue.sent).toHaveLength(1);
    expect([...jobs.jobs.keys()]).toEqual([oldId]);
    expect(told).toEqual([]);
  });

  it('a job whose request is no longer kept (finished before requests were kept for replays) is InvalidRequest', async () => {
    const { deps, alice, jobs, submitted } = setup();
    const oldId = await submitted();
    jobs.requests.delete(oldId);
    expect(await thrown(replayJob(deps, alice, oldId))).toEqual(new InvalidRequest('job_id: the job\'s request is no longer kept, so it cannot be replayed'));
  });
});

describe('jobRequest', () => {
  it('shows what the job sends: its method, URL, headers (the Idempotency-Key added among them) and body as text', async () => {
    const { deps, alice, submitted } = setup();
    const jobId = await submitted({ methodtype: 'patch', headers: { Authorization: 'Bearer svc' }, data: { a: 1 } });
    expect(await jobRequest(deps, alice, jobId)).toEqual({ url: service, method: 'PATCH', headers: { Authorization: 'Bearer svc', 'Content-Type': 'application/json', 'Idempotency-Key': jobId }, body: '{"a":1}' });
    const bare = await submitted({ methodtype: 'GET' });
    expect(await jobRequest(deps, alice, bare)).toEqual({ url: service, method: 'GET', headers: { 'Idempotency-Key': bare }, body: null });
  });

  it('shows a body of bytes as body_base64, as v1 takes it, and a request no longer kept as InvalidRequest', async () => {
    const { deps, alice, jobs, submitted } = setup();
    const jobId = await submitted();
    const bytes = Buffer.from([0, 255, 1]).toString('base64');
    const kept = jobs.requests.get(jobId);
    if (!kept) throw new Error('no request kept');
    jobs.requests.set(jobId, { ...kept, body: bytes, bodyEncoding: 'base64' });
    expect(await jobRequest(deps, alice, jobId)).toMatchObject({ body: null, body_base64: bytes });
    jobs.requests.delete(jobId);
    expect(await thrown(jobRequest(deps, alice, jobId))).toEqual(new InvalidRequest("job_id: the job's request is no longer kept, so it cannot be shown"));
  });
});

describe('listJobs', () => {
  /** `count` jobs of alice's, a second apart, the newest last; returns their ids newest first. */
  async function many(world: ReturnType<typeof setup>, count: number, fields: (i: number) => Partial<Job> = () => ({})): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const job = acceptedJob({ jobId: randomUUID(), clientId: world.alice.clientId, created: new Date(Date.parse('2025-03-01T00:00:00.000Z') + i * 1_000).toISOString(), ...fields(i) });
      await world.jobs.enlist(job.clientId, job.created, [job.jobId], job.expiresAt);
      await world.jobs.create(job, { url: service, method: 'POST', headers: {}, body: null });
      ids.unshift(job.jobId);
    }
    return ids;
  }

  it('pages through the client\'s jobs newest first; following next_cursor to its end lists each once, and the last page says it is the last', async () => {
    const world = setup();
    const ids = await many(world, 45);
    await world.submitted({}, undefined, world.bob);
    const seen: string[] = [];
    let cursor: string | undefined;
    const sizes: number[] = [];
    for (;;) {
      const page = await listJobs(world.deps, world.alice, { limit: 20, ...(cursor ? { cursor } : {}) });
      sizes.push(page.jobs.length);
      seen.push(...page.jobs.map((job) => job.jobId));
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    expect(seen).toEqual(ids);
    expect(sizes).toEqual([20, 20, 5]);
    // A page that ends exactly where the jobs end has no cursor to an empty page.
    expect((await listJobs(world.deps, world.alice, { limit: 45 })).nextCursor).toBeNull();
  });

  it('with a status, leaves the others out and looks at no more than 100 jobs a page: a page may hold fewer than the limit, or none, with a cursor to go on', async () => {
    const world = setup();
    // 250 jobs, newest first: the 5 failed ones are the 120th to the 124th newest, and the 250th.
    const ids = await many(world, 250, (i) => ({ status: (i >= 126 && i <= 130) || i === 0 ? 'failed' : 'completed' }));
    const failed = ids.filter((_, newest) => (newest >= 119 && newest <= 123) || newest === 249);
    const pages: Array<{ jobs: string[]; more: boolean }> = [];
    let cursor: string | undefined;
    do {
      const page = await listJobs(world.deps, world.alice, { status: 'failed', limit: 3, ...(cursor ? { cursor } : {}) });
      pages.push({ jobs: page.jobs.map((job) => job.jobId), more: page.nextCursor !== null });
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(pages).toEqual([
      { jobs: [], more: true },
      { jobs: failed.slice(0, 3), more: true },
      { jobs: failed.slice(3, 5), more: true },
      { jobs: [failed[5]], more: false },
    ]);
  });

  it('a cursor that does not decode, or that another client\'s listing gave, is InvalidRequest about the cursor', async () => {
    const world = setup();
    await many(world, 3);
    const bobs = encodeCursor({ clientId: world.bob.clientId, created: '2025-03-01T00:00:00.000Z', first: randomUUID(), seen: 1 });
    for (const cursor of ['%%%', 'bm90IGpzb24', Buffer.from('{"client":1}').toString('base64url'), bobs, '']) {
      const error = await thrown(listJobs(world.deps, world.alice, { limit: 20, cursor }));
      expect(error, cursor).toBeInstanceOf(InvalidRequest);
      expect((error as Error).message, cursor).toMatch(/^cursor: /);
    }
  });

  it('a limit outside 1 to 100 is InvalidRequest', async () => {
    const world = setup();
    for (const limit of [0, 101, 1.5]) await expect(listJobs(world.deps, world.alice, { limit })).rejects.toThrow(new InvalidRequest('limit: must be an integer from 1 to 100'));
  });
});
