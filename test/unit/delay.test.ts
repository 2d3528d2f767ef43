/**
 * Delayed jobs (v1's not_before and delay_s) on the in-memory ports, their time an injected
 * clock: the schema's 400s; a short delay carried by its message, a long one by the due index
 * and the release; the first attempt never before its time, and within the contract's bounds
 * after it (2 s up to 15 minutes, 60 s beyond), measured on a simulated queue that holds each
 * message for its DelaySeconds (rounded up, as SQS's whole seconds) and a release run every
 * minute; a run cut by its deadline; cancelled jobs; a crash between a send and its mark.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runJobAttempt, type DeliveryDeps } from '../../lambdas/core/deliver.ts';
import { bucketOf, minuteOf, startOf } from '../../lambdas/core/delay.ts';
import type { ApiRequest } from '../../lambdas/core/api.ts';
import type { Job } from '../../lambdas/core/job.ts';
import type { DueIndex, QueueMessage } from '../../lambdas/core/ports.ts';
import { releaseDue } from '../../lambdas/core/release.ts';
import { requeueUnsettled } from '../../lambdas/core/sweep.ts';
import { delays, release } from '../../lib/definitions.ts';
import { callApi } from '../support/api.ts';
import { answer, ManualClock, MemoryClientStore, MemoryDueIndex, memoryApiDeps, ScriptedHttp, testClient } from '../support/memory.ts';

const url = 'https://service.example.com/hook';
const start = Date.parse('2026-12-02T03:04:05.006Z');
const minute = 60_000;
const year = delays.maxSeconds * 1_000;

/** A message in the simulated queue: visible from `visibleAt`, handed out `receives` times so far. */
interface Held {
  message: QueueMessage;
  sentAt: number;
  visibleAt: number;
  receives: number;
}

/**
 * The API, the worker and the release over one in-memory store and a simulated queue. `runTo`
 * moves the clock to an instant event by event: each message delivered when SQS would make it
 * visible (DelaySeconds or a hand-back, in whole seconds, rounded up), the release run at
 * `releaseAtSecond` of every minute. The service call records when it was made.
 */
function world(options: { indexEveryJob?: boolean } = {}) {
  const clock = new ManualClock(start);
  const clients = new MemoryClientStore();
  const alice = testClient('11111111111111');
  clients.clients.set(alice.client.clientId, alice.client);
  const { jobs, queue, deps } = memoryApiDeps(clock, clients, { ...(options.indexEveryJob ? { indexEveryJob: true } : {}) });
  const due = new MemoryDueIndex(jobs);
  const startedAt = new Map<string, number[]>();
  const http = new ScriptedHttp((request) => {
    const jobId = request.headers['Idempotency-Key'] ?? '';
    startedAt.set(jobId, [...(startedAt.get(jobId) ?? []), clock.now()]);
    return answer(200, 'ok');
  });
  const delivery: DeliveryDeps = { jobs, clients, queue, http, clock, sleep: async (ms) => clock.advance(ms) };
  const held: Held[] = [];
  let taken = 0;
  const wholeSeconds = (ms: number) => Math.ceil(Math.max(0, ms) / 1_000) * 1_000;
  const collect = () => {
    for (const message of queue.sent.slice(taken)) held.push({ message, sentAt: clock.now(), visibleAt: clock.now() + wholeSeconds(message.delayMs ?? 0), receives: 0 });
    taken = queue.sent.length;
  };
  const auth = `Basic ${Buffer.from(`${alice.client.clientId}:${alice.token}`).toString('base64')}`;
  const call = async (request: Partial<ApiRequest>) => {
    const answered = await callApi(deps, { method: 'GET', path: '/', query: {}, body: undefined, ...request, headers: { authorization: auth, ...request.headers } });
    collect();
    return answered;
  };
  const submit = (job: Record<string, unknown>) => call({ method: 'POST', path: '/v1/jobs', body: JSON.stringify(job) });
  const releaseRun = async (deadline = clock.now() + 45_000) => {
    const report = await releaseDue({ due, queue, clock }, { deadline });
    collect();
    return report;
  };
  const releaseAtSecond = 17;
  const nextRelease = () => {
    const at = minuteOf(clock.now()) + releaseAtSecond * 1_000;
    return at > clock.now() ? at : at + minute;
  };
  /** Moves the clock to `until`, delivering what falls due and running the release on its minute. */
  const runTo = async (until: number, withRelease = true) => {
    for (;;) {
      const message = held.reduce<Held | undefined>((soonest, each) => (soonest === undefined || each.visibleAt < soonest.visibleAt ? each : soonest), undefined);
      const releaseAt = withRelease ? nextRelease() : Infinity;
      const next = Math.min(message?.visibleAt ?? Infinity, releaseAt);
      if (next > until) break;
      clock.set(Math.max(clock.now(), next));
      if (message && message.visibleAt <= releaseAt) {
        held.splice(held.indexOf(message), 1);
        message.receives++;
        const outcome = await runJobAttempt(delivery, message.message.jobId, {
          ...(message.message.leaseMs !== undefined ? { leaseMs: message.message.leaseMs } : {}),
          receiveCount: message.receives,
          sentAt: message.sentAt,
          deadline: clock.now() + 90_000,
        });
        collect();
        if (!outcome.done) held.push({ ...message, visibleAt: clock.now() + wholeSeconds(outcome.retryAfterMs) });
      } else await releaseRun();
    }
    clock.set(Math.max(clock.now(), until));
  };
  const record = async (jobId: string) => (await call({ method: 'GET', path: `/v1/jobs/${jobId}` })).body;
  return { clock, jobs, queue, due, held, deps, submit, call, releaseRun, runTo, startedAt, record, http, delivery, collect };
}

const jobIdOf = (answered: { body: Record<string, unknown> }) => String(answered.body['job_id']);

describe('v1 delay fields', () => {
  it('refuses a delay_s outside 0 to a year, or not an integer, naming the field and the rule', async () => {
    const { submit, queue } = world();
    for (const delay_s of [-1, 31_536_001, 1.5, '60', null]) {
      const answered = await submit({ url, delay_s });
      expect(answered.statusCode, String(delay_s)).toBe(400);
      expect(answered.body['detail']).toBe('delay_s must be an integer from 0 to 31536000 (365 days)');
    }
    expect(queue.sent).toEqual([]);
  });

  it('refuses a not_before that is not an RFC 3339 time with an offset, or more than a year ahead', async () => {
    const { submit } = world();
    for (const not_before of ['2027-03-01T09:30:00', '2027-03-01', 'tomorrow', '2027-02-30T09:30:00Z', 1_800_000_000]) {
      const answered = await submit({ url, not_before });
      expect(answered.statusCode, String(not_before)).toBe(400);
      expect(answered.body['detail']).toMatch(/^not_before must be an RFC 3339 time with a time zone offset or Z/);
    }
    const tooFar = await submit({ url, not_before: new Date(start + year + 1_000).toISOString() });
    expect(tooFar.statusCode).toBe(400);
    expect(tooFar.body['detail']).toBe('not_before: must be at most 31536000 seconds (365 days) ahead; it is 31536001 seconds ahead');
    expect((await submit({ url, not_before: new Date(start + year).toISOString() })).statusCode).toBe(202);
  });

  it('refuses both fields together, naming them', async () => {
    const { submit } = world();
    const answered = await submit({ url, delay_s: 60, not_before: '2027-03-01T09:30:00Z' });
    expect(answered.statusCode).toBe(400);
    expect(answered.body['detail']).toBe('not_before and delay_s: give one of them, not both (a time, or seconds from now)');
  });

  it('refuses a batch job with a bad delay by its place, and accepts the others', async () => {
    const { call } = world();
    const answered = await call({ method: 'POST', path: '/v1/jobs/batch', body: JSON.stringify({ jobs: [{ url, delay_s: 30 }, { url, not_before: new Date(start + 2 * year).toISOString() }, { url, delay_s: 2_000 }] }) });
    const results = answered.body['results'] as Array<Record<string, unknown>>;
    expect(results[0]).toMatchObject({ status: 'accepted' });
    expect(results[1]).toMatchObject({ error: { status: 400, detail: expect.stringMatching(/^jobs\[1\]: not_before: must be at most 31536000 seconds/) } });
    expect(results[2]).toMatchObject({ status: 'accepted' });
  });

  it('the seed API keeps its fields: a delay_s on POST /webhook is ignored, as any unknown field there', async () => {
    const { call, queue } = world();
    const answered = await call({ method: 'POST', path: '/webhook', body: JSON.stringify({ service: url, delay_s: 600 }) });
    expect(answered.statusCode).toBe(202);
    expect(queue.sent[0]?.delayMs).toBeUndefined();
  });

  it('a not_before in the past, and delay_s 0, run now', async () => {
    expect(startOf({ not_before: '2020-01-01T00:00:00Z' }, start)).toEqual({});
    expect(startOf({ delay_s: 0 }, start)).toEqual({});
    expect(startOf({ not_before: '2026-12-02T04:04:05.006+01:00' }, start)).toEqual({});
    expect(startOf({ not_before: '2026-12-02T04:04:06.006+01:00' }, start)).toEqual({ startAt: start + 1_000 });
  });
});

describe('a delay up to 15 minutes', () => {
  it('is carried by its message: accepted with next_attempt_at, queued with the delay, nothing in the due index', async () => {
    const { submit, queue, jobs, record } = world();
    const jobId = jobIdOf(await submit({ url, delay_s: 900 }));
    expect(queue.sent).toEqual([{ kind: 'job', jobId, leaseMs: 25_000, delayMs: 900_000 }]);
    expect((await jobs.get(jobId))?.due).toBeUndefined();
    expect(await record(jobId)).toMatchObject({ status: 'accepted', next_attempt_at: new Date(start + 900_000).toISOString() });
  });

  it('starts no earlier than its time and within 2 s after it, for any delay and any millisecond of submit', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 900 }), fc.integer({ min: 0, max: 999 }), async (delaySeconds, offsetMs) => {
        const w = world();
        w.clock.advance(offsetMs);
        const submittedAt = w.clock.now();
        const jobId = jobIdOf(await w.submit({ url, delay_s: delaySeconds }));
        await w.runTo(submittedAt + delaySeconds * 1_000 + 5_000, false);
        const [startedAt, ...again] = w.startedAt.get(jobId) ?? [];
        expect(again).toEqual([]);
        const late = (startedAt ?? Infinity) - (submittedAt + delaySeconds * 1_000);
        expect(late).toBeGreaterThanOrEqual(0);
        expect(late).toBeLessThanOrEqual(2_000);
      }),
      { numRuns: 60 },
    );
  });

  it('a message that comes early (a clock apart) does not start the job: the first delivery\'s write asks that it be due', async () => {
    const { submit, delivery, jobs, http, clock } = world();
    const jobId = jobIdOf(await submit({ url, delay_s: 60 }));
    clock.advance(30_000);
    const outcome = await runJobAttempt(delivery, jobId, { leaseMs: 25_000, receiveCount: 1, sentAt: start });
    expect(outcome).toEqual({ done: false, retryAfterMs: 30_000 });
    expect(http.requests).toEqual([]);
    expect(await jobs.get(jobId)).toMatchObject({ status: 'accepted', attempts: 0, nextAttemptAt: start + 60_000 });
  });

  it('after a restart (the queue emptied), recovery queues it again with what is left of its delay', async () => {
    const w = world({ indexEveryJob: true });
    const jobId = jobIdOf(await w.submit({ url, delay_s: 600 }));
    w.clock.advance(200_500);
    w.queue.clear();
    await requeueUnsettled({ jobs: w.jobs, queue: w.queue, clock: w.clock }, { expireLeases: true });
    expect(w.queue.sent).toEqual([{ kind: 'job', jobId, delayMs: 399_500 }]);
  });
});

describe('a delay beyond 15 minutes', () => {
  it('waits in the store: no message at submit, accepted with next_attempt_at, in the bucket of its minute and shard', async () => {
    const { submit, queue, jobs, record } = world();
    const jobId = jobIdOf(await submit({ url, delay_s: 901 }));
    expect(queue.sent).toEqual([]);
    const startAt = start + 901_000;
    expect(await jobs.get(jobId)).toMatchObject({ status: 'accepted', nextAttemptAt: startAt, due: bucketOf(startAt, jobId.charAt(0)) });
    expect(bucketOf(startAt, 'a')).toBe('2026-12-02T03:19Z#a');
    expect(await record(jobId)).toMatchObject({ status: 'accepted', next_attempt_at: new Date(startAt).toISOString() });
  });

  it('a job due in 20 minutes is released by the minute\'s runs and starts no earlier than its time, within 60 s after it (here within 1 s)', async () => {
    const w = world();
    const jobId = jobIdOf(await w.submit({ url, delay_s: 20 * 60 }));
    const startAt = start + 20 * minute;
    await w.runTo(startAt - 1);
    expect(w.startedAt.get(jobId)).toBeUndefined();
    await w.runTo(startAt + 60_000);
    const [startedAt, ...again] = w.startedAt.get(jobId) ?? [];
    expect(again).toEqual([]);
    expect(startedAt! - startAt).toBeGreaterThanOrEqual(0);
    expect(startedAt! - startAt).toBeLessThanOrEqual(1_000);
    expect((await w.jobs.get(w.queue.sent[0]?.jobId ?? ''))?.due).toBeUndefined();
  });

  it('a job due in a year: never sent while it is more than 15 minutes away, then started on time', async () => {
    const w = world();
    const jobId = jobIdOf(await w.submit({ url, delay_s: delays.maxSeconds }));
    const startAt = start + year;
    // Runs spread over the year, each from where the last left off (the memory index reads each minute's buckets).
    for (const at of [start + 30_000, start + 3 * minute]) {
      w.clock.set(at);
      await w.releaseRun();
    }
    expect(w.queue.sent).toEqual([]);
    // The release kept up, minute by minute, until half an hour before: from there it is run as scheduled.
    w.due.through = minuteOf(startAt - 30 * minute);
    w.clock.set(startAt - 30 * minute + 20_000);
    await w.runTo(startAt - 15 * minute - 1);
    expect(w.queue.sent).toEqual([]);
    await w.runTo(startAt - 1);
    expect(w.queue.sent).toEqual([{ kind: 'job', jobId, leaseMs: 25_000, delayMs: expect.any(Number) }]);
    expect(w.startedAt.get(jobId)).toBeUndefined();
    await w.runTo(startAt + 60_000);
    const startedAt = w.startedAt.get(jobId)?.[0] ?? Infinity;
    expect(startedAt - startAt).toBeGreaterThanOrEqual(0);
    expect(startedAt - startAt).toBeLessThanOrEqual(60_000);
  });

  it('whatever the time of a run and the progress saved, it reads no bucket beyond 15 minutes ahead and sends no job more than 15 minutes early', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 3 * 3_600 }), fc.integer({ min: 0, max: 40 }), fc.array(fc.integer({ min: 901, max: 4 * 3_600 }), { minLength: 1, maxLength: 8 }), async (runAfterS, savedBackMin, delaysS) => {
        const w = world();
        for (const delay_s of delaysS) await w.submit({ url, delay_s });
        w.clock.advance(runAfterS * 1_000);
        w.due.through = minuteOf(w.clock.now()) - savedBackMin * minute;
        await w.releaseRun();
        const horizon = minuteOf(w.clock.now() + release.horizonMs);
        for (const bucket of w.due.reads) expect(Date.parse(bucket.slice(0, 17))).toBeLessThanOrEqual(horizon);
        for (const message of w.queue.sent) {
          const job = (await w.jobs.get(message.jobId)) as Job;
          expect(job.nextAttemptAt! - w.clock.now()).toBeLessThanOrEqual(delays.queueMaxMs);
          expect(message.delayMs ?? 0).toBe(Math.max(0, job.nextAttemptAt! - w.clock.now()));
        }
      }),
      { numRuns: 80 },
    );
  });

  it('a run cut by its deadline leaves the bucket\'s other jobs where they are; the next run sends those alone', async () => {
    const w = world();
    const ids: string[] = [];
    // 35 jobs of one shard and one minute: each send takes a second of the clock.
    w.deps.newId = () => `7${crypto.randomUUID().slice(1)}`;
    for (let i = 0; i < 35; i++) ids.push(jobIdOf(await w.submit({ url, delay_s: 20 * 60 })));
    const sendMany = w.queue.sendMany.bind(w.queue);
    w.queue.sendMany = async (messages) => {
      await sendMany(messages);
      w.clock.advance(1_000);
    };
    w.clock.set(start + 6 * minute);
    const first = await w.releaseRun(w.clock.now() + 2_500);
    expect(first).toMatchObject({ released: 30, unfinished: true });
    const through = first.through;
    expect(through).toBeLessThan(minuteOf(start + 20 * minute));
    const second = await w.releaseRun();
    expect(second).toMatchObject({ released: 5, unfinished: false });
    expect(new Set(w.queue.sent.map((message) => message.jobId))).toEqual(new Set(ids));
    expect(w.queue.sent).toHaveLength(35);
  });

  it('a cancelled job is never sent, and never started (also one cancelled after the release read it)', async () => {
    const w = world();
    const cancelled = jobIdOf(await w.submit({ url, delay_s: 3_600 }));
    const late = jobIdOf(await w.submit({ url, delay_s: 3_600 }));
    const cancel = await w.call({ method: 'DELETE', path: `/v1/jobs/${cancelled}` });
    expect(cancel.body).toMatchObject({ status: 'cancelled', next_attempt_at: null });
    expect((await w.jobs.get(cancelled))?.due).toBeUndefined();
    // The second is read by the release (the index lags its cancel), so it is sent; its message finds it final.
    const entry = (await w.jobs.get(late)) as Job;
    await w.call({ method: 'DELETE', path: `/v1/jobs/${late}` });
    w.due.lagging.set(late, { jobId: late, due: entry.due!, startAt: entry.nextAttemptAt!, timeoutMs: entry.timeoutMs });
    await w.runTo(start + 70 * minute);
    expect(w.queue.sent.map((message) => message.jobId)).toEqual([late]);
    expect(w.http.requests).toEqual([]);
    expect(await w.record(late)).toMatchObject({ status: 'cancelled' });
  });

  it('a crash between a send and its mark sends the job again at the next run, and it still runs once', async () => {
    const w = world();
    const jobId = jobIdOf(await w.submit({ url, delay_s: 30 * 60 }));
    const real = w.due.released.bind(w.due);
    let crash = true;
    const due: DueIndex = Object.assign(Object.create(w.due) as MemoryDueIndex, {
      released: async (id: string, bucket: string) => {
        if (crash) {
          crash = false;
          throw new Error('the function died');
        }
        return real(id, bucket);
      },
    });
    w.clock.set(start + 16 * minute + 17_000);
    await expect(releaseDue({ due, queue: w.queue, clock: w.clock }, { deadline: w.clock.now() + 45_000 })).rejects.toThrow('the function died');
    w.collect();
    expect(w.queue.sent).toHaveLength(1);
    await w.runTo(start + 40 * minute);
    expect(w.queue.sent.map((message) => message.jobId)).toEqual([jobId, jobId]);
    expect(w.startedAt.get(jobId)).toHaveLength(1);
    expect(await w.record(jobId)).toMatchObject({ status: 'completed' });
  });

  it('after a restart (the queue emptied), recovery leaves it to the release: not queued early, not counted as stuck', async () => {
    const w = world({ indexEveryJob: true });
    await w.submit({ url, delay_s: 3_600 });
    w.clock.advance(10 * minute);
    const report = await requeueUnsettled({ jobs: w.jobs, queue: w.queue, clock: w.clock }, { expireLeases: true });
    expect(report).toMatchObject({ jobs: 0 });
    expect(w.queue.sent).toEqual([]);
  });

  it('a replay of a delayed job runs now', async () => {
    const w = world();
    const jobId = jobIdOf(await w.submit({ url, delay_s: 3_600 }));
    const replayed = await w.call({ method: 'POST', path: `/v1/jobs/${jobId}/replay` });
    expect(replayed.statusCode).toBe(202);
    const copy = (await w.jobs.get(String(replayed.body['job_id']))) as Job;
    expect(copy.nextAttemptAt).toBeUndefined();
    expect(copy.due).toBeUndefined();
    expect(w.queue.sent).toEqual([expect.objectContaining({ jobId: copy.jobId })]);
    expect(w.queue.sent[0]?.delayMs).toBeUndefined();
  });
});
