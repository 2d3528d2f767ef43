import { Webhook } from 'standardwebhooks';
import { describe, expect, it, vi } from 'vitest';
import { runCallbackAttempt, runJobAttempt as runJobMessage, settleDeadLetter, type DeliveryDeps, type JobMessageFacts, type Outcome } from '../../lambdas/core/deliver.ts';
import { JobIsFinal } from '../../lambdas/core/errors.ts';
import { cancelJob, jobAttempts } from '../../lambdas/core/manage.ts';
import type { AttemptOutput, Job } from '../../lambdas/core/job.ts';
import { ConditionFailed } from '../../lambdas/core/ports.ts';
import { requeueUnsettled } from '../../lambdas/core/sweep.ts';
import { submit } from '../../lambdas/core/submit.ts';
import { backoffMs } from '../../lambdas/core/retry.ts';
import { jobLimits, leaseMarginMs, retryTiming, submitWriteWindowMs } from '../../lib/definitions.ts';
import {
  acceptedJob,
  answer,
  deferred,
  failure,
  ManualClock,
  MemoryClientStore,
  MemoryJobStore,
  MemoryWorkQueue,
  ScriptedHttp,
  testClient,
  unsettledIds,
  type Script,
} from '../support/memory.ts';

const service = 'https://service.example.com/hook';
const callback = 'https://callback.example.com/done';
const draw = 0.5;
/** The delay before callback attempt 2 (and service attempt 2) with the draw above. */
const firstRetryMs = backoffMs(1, retryTiming, () => draw);

/** What the queue tells of each job's message: as submit queued it, and how often it was handed out. */
const messages = new Map<string, JobMessageFacts>();

/** The job's message, delivered as the queue would deliver it: once more each call. */
function runJobAttempt(deps: DeliveryDeps, jobId: string): Promise<Outcome> {
  const facts = messages.get(jobId) ?? {};
  const receiveCount = (facts.receiveCount ?? 0) + 1;
  messages.set(jobId, { ...facts, receiveCount });
  return runJobMessage(deps, jobId, { ...facts, receiveCount });
}

/** A world of fakes; the clock starts at the real time so that Standard Webhooks' replay window holds. */
function setup(script: Script = () => answer(200, 'ok'), options: { indexEveryJob?: boolean } = {}) {
  const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);
  const jobs = new MemoryJobStore();
  const clients = new MemoryClientStore();
  const queue = new MemoryWorkQueue();
  const http = new ScriptedHttp(script);
  const alice = testClient('11111111111111');
  clients.clients.set(alice.client.clientId, alice.client);
  const deps: DeliveryDeps = { jobs, clients, queue, http, clock, random: () => draw, sleep: async (ms) => clock.advance(ms) };
  /** Submits a job as the API does, and forgets the queue message that carried it. */
  const newJob = async (fields: Record<string, unknown> = {}) => {
    const accepted = await submit({ jobs, queue, clock, retentionDays: 30, refuse: async () => undefined, ...options }, alice.client, { service, ...fields });
    const [queued] = queue.sent;
    messages.set(accepted.job_id, { sentAt: clock.now(), ...(queued?.leaseMs !== undefined ? { leaseMs: queued.leaseMs } : {}) });
    queue.clear();
    return accepted.job_id;
  };
  const job = async (jobId: string) => {
    const found = await jobs.get(jobId);
    if (!found) throw new Error(`job ${jobId} is gone`);
    return found;
  };
  return { clock, jobs, clients, queue, http, alice, deps, newJob, job };
}

type Reply = AttemptOutput | Promise<AttemptOutput> | (() => AttemptOutput | Promise<AttemptOutput>);

/**
 * Answers the service's calls and the callback's calls in turn, each from its own list; the last
 * reply of a list repeats. A function is called when its turn comes.
 */
function replies(toService: Reply[], toCallback: Reply[] = [answer(200)]): Script {
  let services = 0;
  let callbacks = 0;
  return (request) => {
    const list = request.url === service ? toService : toCallback;
    const turn = request.url === service ? services++ : callbacks++;
    const reply = list[Math.min(turn, list.length - 1)] ?? answer(200);
    return typeof reply === 'function' ? reply() : reply;
  };
}

/** Runs attempts as the queue would deliver them, the clock moving by each postponement, until done. */
async function runToEnd(deps: DeliveryDeps, clock: ManualClock, run: typeof runJobAttempt, jobId: string): Promise<number> {
  let messages = 0;
  for (;;) {
    messages++;
    if (messages > 100) throw new Error('the job never settled');
    const outcome: Outcome = await run(deps, jobId);
    if (outcome.done) return messages;
    clock.advance(outcome.retryAfterMs);
  }
}

/** Settles the microtask queue and one turn of the event loop. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

const urls = (http: ScriptedHttp) => http.requests.map((request) => request.url);

describe('a service call', () => {
  it('a 2xx completes the job after one attempt, keeps the output, and calls back inline: nothing is queued', async () => {
    const { deps, newJob, job, queue, http } = setup(replies([answer(201, 'created!', { 'x-answer': 'yes' })]));
    const jobId = await newJob({ callback });
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: true });
    const settled = await job(jobId);
    expect(settled).toMatchObject({ status: 'completed', attempts: 1, notified: 'true' });
    expect(settled.output).toMatchObject({ statusCode: 201, body: 'created!', headers: { 'x-answer': 'yes' } });
    expect(settled.history).toEqual([expect.objectContaining({ attempt: 1, statusCode: 201 })]);
    expect(settled.leaseUntil).toBeUndefined();
    expect(urls(http)).toEqual([service, callback]);
    expect(queue.sent).toEqual([]);
  });

  it('a job without a callback queues no callback and stays notified "n/a"', async () => {
    const { deps, newJob, job, queue, http } = setup();
    const jobId = await newJob();
    await runJobAttempt(deps, jobId);
    expect(await job(jobId)).toMatchObject({ status: 'completed', notified: 'n/a', notifyAttempts: 0 });
    expect((await job(jobId)).sweep).toBeUndefined();
    expect(queue.sent).toEqual([]);
    expect(await runCallbackAttempt(deps, jobId)).toEqual({ done: true });
    expect(http.requests).toHaveLength(1);
    expect((await job(jobId)).notified).toBe('n/a');
  });

  it('sends the stored method, headers, body and Idempotency-Key: <job_id>, within the job\'s timeout', async () => {
    const { deps, newJob, http } = setup();
    const jobId = await newJob({ methodtype: 'put', headers: { Authorization: 'Bearer svc' }, data: { a: 1 }, timeout_ms: 2500 });
    await runJobAttempt(deps, jobId);
    expect(http.requests).toEqual([
      {
        url: service,
        method: 'PUT',
        headers: { Authorization: 'Bearer svc', 'Content-Type': 'application/json', 'Idempotency-Key': jobId },
        body: '{"a":1}',
        timeoutMs: 2500,
      },
    ]);
  });

  it('a job whose request record is missing fails with that reason, without a service call', async () => {
    const { deps, newJob, job, jobs, http } = setup();
    const jobId = await newJob({ max_attempts: 5 });
    jobs.requests.delete(jobId);
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: true });
    expect(await job(jobId)).toMatchObject({ status: 'failed', attempts: 1, output: { error: 'the job request record is missing' } });
    expect(http.requests).toEqual([]);
  });

  it('a 500 then a 200: the first attempt schedules a retry within the backoff and calls nobody back, the second completes and calls back', async () => {
    const { deps, newJob, job, clock, queue, http } = setup(replies([answer(500, 'oops'), answer(200, 'fine')]));
    const jobId = await newJob({ callback });
    const start = clock.now();
    const first = await runJobAttempt(deps, jobId);
    expect(first.done).toBe(false);
    const delay = first.done ? -1 : first.retryAfterMs;
    expect(delay).toBeGreaterThanOrEqual(0);
    expect(delay).toBeLessThanOrEqual(retryTiming.baseDelayMs);
    expect(delay).toBe(firstRetryMs);
    const waiting = await job(jobId);
    expect(waiting).toMatchObject({ status: 'running', attempts: 1, nextAttemptAt: start + delay, output: { statusCode: 500 }, notified: 'no', notifyAttempts: 0 });
    expect(waiting.leaseUntil).toBeUndefined();
    expect(http.to(callback)).toEqual([]);
    expect(queue.sent).toEqual([]);

    clock.advance(delay);
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: true });
    const settled = await job(jobId);
    expect(settled).toMatchObject({ status: 'completed', attempts: 2, output: { statusCode: 200, body: 'fine' }, notified: 'true', notifyAttempts: 1 });
    expect(settled.nextAttemptAt).toBeUndefined();
    expect(settled.history.map((line) => [line.attempt, line.statusCode])).toEqual([
      [1, 500],
      [2, 200],
    ]);
    expect(urls(http)).toEqual([service, service, callback]);
    expect(queue.sent).toEqual([]);
  });

  it('a message that arrives before the retry is due is postponed until then, without an attempt', async () => {
    const { deps, newJob, job, clock, http } = setup(() => answer(503));
    const jobId = await newJob();
    const first = await runJobAttempt(deps, jobId);
    const delay = first.done ? 0 : first.retryAfterMs;
    expect(delay).toBeGreaterThan(100);
    clock.advance(100);
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: false, retryAfterMs: delay - 100 });
    expect(http.requests).toHaveLength(1);
    expect((await job(jobId)).attempts).toBe(1);
  });

  it('honours Retry-After from the service', async () => {
    const { deps, newJob, job, clock } = setup(() => answer(429, '', { 'retry-after': '30' }));
    const jobId = await newJob();
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: false, retryAfterMs: 30_000 });
    expect((await job(jobId)).nextAttemptAt).toBe(clock.now() + 30_000);
  });

  it('a 404 fails the job at once and calls back inline', async () => {
    const { deps, newJob, job, queue, http } = setup(replies([answer(404, 'no such page')]));
    const jobId = await newJob({ callback });
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: true });
    expect(await job(jobId)).toMatchObject({ status: 'failed', attempts: 1, output: { statusCode: 404 }, notified: 'true', notifyAttempts: 1 });
    expect(urls(http)).toEqual([service, callback]);
    expect(queue.sent).toEqual([]);
  });

  it('a refusal by the egress policy fails the job at once', async () => {
    const { deps, newJob, job, http } = setup(() => failure('egress policy: 10.0.0.1 is a private address'));
    const jobId = await newJob({ max_attempts: 5 });
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: true });
    expect(await job(jobId)).toMatchObject({ status: 'failed', attempts: 1, output: { error: expect.stringMatching(/^egress policy:/) } });
    expect(http.requests).toHaveLength(1);
  });

  it('fails the job once max_attempts retryable attempts were made, then calls back once', async () => {
    const { deps, newJob, job, clock, queue, http } = setup(replies([failure('timeout')], [answer(200)]));
    const jobId = await newJob({ max_attempts: 3, callback });
    await runToEnd(deps, clock, runJobAttempt, jobId);
    expect(urls(http)).toEqual([service, service, service, callback]);
    expect(await job(jobId)).toMatchObject({ status: 'failed', attempts: 3, output: { error: 'timeout' }, notified: 'true', notifyAttempts: 1 });
    expect((await job(jobId)).history).toHaveLength(3);
    expect(queue.sent).toEqual([]);
  });

  it('two workers given the same message at once make the HTTP call once', async () => {
    const gate = deferred<AttemptOutput>();
    const called = deferred();
    const { deps, newJob, job, http } = setup(() => {
      called.resolve();
      return gate.promise;
    });
    const jobId = await newJob();
    const one = runJobAttempt(deps, jobId);
    const two = runJobAttempt(deps, jobId);
    await called.promise;
    // The loser does not wait on the winner's call: it is postponed while the lease runs.
    const loser = await Promise.race([one, two]);
    expect(loser).toEqual({ done: false, retryAfterMs: 10_000 + leaseMarginMs });
    gate.resolve(answer(200));
    const outcomes = await Promise.all([one, two]);
    expect(outcomes).toContainEqual({ done: true });
    expect(http.requests).toHaveLength(1);
    expect(await job(jobId)).toMatchObject({ status: 'completed', attempts: 1 });
  });

  it('a redelivery of a settled job makes no service call: it carries the callback\'s attempts while the callback is unsettled, then is done', async () => {
    // The first callback fails (503), so the callback stays unsettled until its retry succeeds.
    const { deps, newJob, job, queue, http, clock } = setup(replies([answer(200)], [answer(503), answer(200)]));
    const jobId = await newJob({ callback });
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: false, retryAfterMs: firstRetryMs });
    expect(await job(jobId)).toMatchObject({ status: 'completed', notified: 'no' });

    // A duplicate before the retry is due waits for it, without a call.
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: false, retryAfterMs: firstRetryMs });
    clock.advance(firstRetryMs);
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: true });
    expect((await job(jobId)).notified).toBe('true');
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: true });
    expect(http.to(service)).toHaveLength(1);
    expect(http.to(callback)).toHaveLength(2);
    expect(queue.sent).toEqual([]);
  });

  it('a redelivery of a settled job without callback queues nothing', async () => {
    const { deps, newJob, queue, http } = setup(() => answer(400));
    const jobId = await newJob();
    await runJobAttempt(deps, jobId);
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: true });
    expect(http.requests).toHaveLength(1);
    expect(queue.sent).toEqual([]);
  });

  it('a message for a job that does not exist is done with', async () => {
    const { deps, http, queue } = setup();
    expect(await runJobAttempt(deps, '8a6e0804-2bd0-4672-b79d-d97027f9071e')).toEqual({ done: true });
    expect(await runCallbackAttempt(deps, '8a6e0804-2bd0-4672-b79d-d97027f9071e')).toEqual({ done: true });
    expect(http.requests).toEqual([]);
    expect(queue.sent).toEqual([]);
  });
});

describe('the inline callback of a job that becomes final', () => {
  it('a 2xx with a callback: the answer is recorded first, with the callback\'s lease in the same write; then one signed POST, then its outcome; nothing is queued', async () => {
    let duringCallback: Job | undefined;
    const world = setup(
      replies(
        [answer(200, 'done')],
        [
          () => {
            duringCallback = structuredClone([...world.jobs.jobs.values()][0]);
            return answer(200);
          },
        ],
      ),
    );
    const { deps, newJob, job, jobs, queue, http, alice } = world;
    const jobId = await newJob({ callback });
    const before = jobs.updates.length;
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: true });

    expect(urls(http)).toEqual([service, callback]);
    const [sent] = http.to(callback);
    expect(sent?.method).toBe('POST');
    expect(() => new Webhook(alice.secret).verify(sent?.body ?? '', sent?.headers ?? {})).not.toThrow();
    // While the callback went out, the record already showed the answer: a crash now repeats no service call.
    expect(duringCallback).toMatchObject({ status: 'completed', output: { statusCode: 200, body: 'done' }, notified: 'no', notifyAttempts: 1, notifyLeaseUntil: expect.any(Number) });
    expect(duringCallback?.leaseUntil).toBeUndefined();

    const settled = await job(jobId);
    expect(settled).toMatchObject({ status: 'completed', attempts: 1, notified: 'true', notifyAttempts: 1, notifyoutput: '200' });
    for (const field of ['leaseUntil', 'nextNotifyAt', 'notifyLeaseUntil', 'sweep'] as const) expect(settled[field]).toBeUndefined();
    expect(queue.sent).toEqual([]);

    const writes = jobs.updates.slice(before);
    expect(writes.map((write) => write.applied)).toEqual([true, true, true]);
    const [lease, recorded, calledBack] = writes;
    expect(lease?.changes).toMatchObject({ status: 'started', attempts: 1, leaseUntil: expect.any(Number) });
    expect(recorded?.changes).toMatchObject({ status: 'completed', output: { statusCode: 200 }, notifyAttempts: 1, notifyLeaseUntil: expect.any(Number) });
    // Under our lease, and only on a job still open: a cancel that landed first stands.
    expect(recorded?.condition).toEqual({ expect: { leaseUntil: lease?.changes.leaseUntil }, statusIn: ['accepted', 'started', 'running'] });
    expect(calledBack?.changes).toMatchObject({ notified: 'true', notifyAttempts: 1, notifyoutput: '200' });
    expect(calledBack?.condition).toEqual({ expect: { notifyLeaseUntil: recorded?.changes.notifyLeaseUntil } });

    // Nothing is left for the callbacks queue.
    expect(await runCallbackAttempt(deps, jobId)).toEqual({ done: true });
    expect(http.to(callback)).toHaveLength(1);
  });

  it('a crash while calling back never calls the service again: the redelivered message only makes the callback', async () => {
    const lost = deferred<AttemptOutput>();
    // As on the local stack, whose queue does not survive a restart: every job is in the sweeper's index.
    const { deps, newJob, job, jobs, queue, http, clock } = setup(replies([answer(200, 'answered once')], [lost.promise, answer(200)]), { indexEveryJob: true });
    const jobId = await newJob({ callback });
    // The worker dies in its callback: its outcome never arrives.
    void runJobAttempt(deps, jobId);
    await settle();
    expect(await job(jobId)).toMatchObject({ status: 'completed', output: { body: 'answered once' }, notified: 'no' });
    // A restart expires the leases and queues the work again; the message carries the callback alone.
    expect(await requeueUnsettled({ jobs, queue, clock }, { expireLeases: true })).toEqual({ jobs: 0, callbacks: 1, leasesExpired: 1 });
    expect(await runToEnd(deps, clock, runJobAttempt, jobId)).toBe(1);
    expect(http.to(service)).toHaveLength(1);
    expect(http.to(callback)).toHaveLength(2);
    expect(await job(jobId)).toMatchObject({ status: 'completed', notified: 'true', notifyAttempts: 1 });
  });

  it('a final job whose first callback fails retryably keeps notified "no", schedules the retry, and its message comes back for it when due', async () => {
    const { deps, newJob, job, jobs, queue, http, clock } = setup(replies([answer(200)], [answer(503), answer(200)]));
    const jobId = await newJob({ callback });
    const start = clock.now();
    const before = jobs.updates.length;
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: false, retryAfterMs: firstRetryMs });

    const waiting = await job(jobId);
    expect(waiting).toMatchObject({ status: 'completed', notified: 'no', notifyAttempts: 1, notifyoutput: '503', nextNotifyAt: start + firstRetryMs });
    expect(waiting.leaseUntil).toBeUndefined();
    expect(waiting.notifyLeaseUntil).toBeUndefined();
    // Still unsettled: the sweeper keeps it in sight.
    expect(waiting.sweep).toBeDefined();
    expect(jobs.updates.slice(before)).toHaveLength(3);
    // One mechanism for every retry: the message in hand comes back, nothing new is queued.
    expect(queue.sent).toEqual([]);

    // The message, back before the retry is due, is postponed again without a call.
    clock.advance(firstRetryMs - 1);
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: false, retryAfterMs: 1 });
    expect(http.to(callback)).toHaveLength(1);
    expect(await job(jobId)).toMatchObject({ notified: 'no', notifyAttempts: 1 });

    // Once it is due, the job's message makes callback attempt 2.
    clock.advance(1);
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: true });
    expect(http.to(callback)).toHaveLength(2);
    expect(http.to(service)).toHaveLength(1);
    const settled = await job(jobId);
    expect(settled).toMatchObject({ notified: 'true', notifyAttempts: 2, notifyoutput: '200' });
    expect(settled.nextNotifyAt).toBeUndefined();
    expect(settled.sweep).toBeUndefined();
  });

  it('a Retry-After from the callback is the wait before the message returns for the retry', async () => {
    const { deps, newJob, job, queue, clock } = setup(replies([answer(200)], [answer(429, '', { 'retry-after': '30' })]));
    const jobId = await newJob({ callback });
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: false, retryAfterMs: 30_000 });
    expect((await job(jobId)).nextNotifyAt).toBe(clock.now() + 30_000);
    expect(queue.sent).toEqual([]);
  });

  it('with callback_max_attempts 1, a failing inline callback is "notification failed" at once and nothing is queued', async () => {
    const { deps, newJob, job, queue, http } = setup(replies([answer(200)], [answer(500)]));
    const jobId = await newJob({ callback, callback_max_attempts: 1 });
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: true });
    const settled = await job(jobId);
    expect(settled).toMatchObject({ status: 'completed', notified: 'notification failed', notifyAttempts: 1, notifyoutput: '500' });
    expect(settled.nextNotifyAt).toBeUndefined();
    expect(settled.sweep).toBeUndefined();
    expect(queue.sent).toEqual([]);
    expect(await runCallbackAttempt(deps, jobId)).toEqual({ done: true });
    expect(http.to(callback)).toHaveLength(1);
  });

  it('a callback answered with a status not worth retrying is "notification failed" at once, whatever callback_max_attempts', async () => {
    const { deps, newJob, job, queue } = setup(replies([answer(200)], [answer(400)]));
    const jobId = await newJob({ callback, callback_max_attempts: 5 });
    await runJobAttempt(deps, jobId);
    expect(await job(jobId)).toMatchObject({ notified: 'notification failed', notifyAttempts: 1, notifyoutput: '400' });
    expect(queue.sent).toEqual([]);
  });

  it('the callback body carries the final status and the same lastUpdate as the stored record', async () => {
    // The service call takes 1.234 s: the record's lastUpdate is when it finished, not when it started.
    const world = setup(
      replies([
        () => {
          world.clock.advance(1_234);
          return answer(200, 'slow');
        },
      ]),
    );
    const { deps, newJob, job, http, clock } = world;
    const jobId = await newJob({ callback });
    const start = clock.now();
    await runJobAttempt(deps, jobId);
    const settled = await job(jobId);
    expect(settled.lastUpdate).toBe(new Date(start + 1_234).toISOString());
    const body = JSON.parse(http.to(callback)[0]?.body ?? '{}') as Record<string, unknown>;
    expect(body).toMatchObject({ jobId, status: 'completed', attempts: 1, lastUpdate: settled.lastUpdate, output: { statusCode: 200, body: 'slow' } });
  });

  it('a client that no longer exists settles the callback as "notification failed" without a call', async () => {
    const { deps, newJob, job, queue, http, clients, alice } = setup();
    const jobId = await newJob({ callback });
    clients.clients.delete(alice.client.clientId);
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: true });
    expect(await job(jobId)).toMatchObject({ status: 'completed', notified: 'notification failed', notifyAttempts: 1, notifyoutput: 'the client no longer exists' });
    expect(urls(http)).toEqual([service]);
    expect(queue.sent).toEqual([]);
  });
});

/** A job whose first attempt a worker holds and never finishes (it crashed). */
async function heldByACrashedWorker(more: Script = () => answer(200, 'second worker')) {
  const hung = deferred<AttemptOutput>();
  const world = setup((request, index) => (index === 0 ? hung.promise : more(request, index)));
  const jobId = await world.newJob({ timeout_ms: 1000 });
  const crashed = runJobAttempt(world.deps, jobId);
  await settle();
  expect(world.http.requests).toHaveLength(1);
  const held = await world.job(jobId);
  expect(held).toMatchObject({ status: 'started', attempts: 1, leaseUntil: world.clock.now() + 1000 + leaseMarginMs });
  return { ...world, jobId, hung, crashed, leaseUntil: held.leaseUntil ?? 0 };
}

describe('leases', () => {
  it('the lease of a service call covers its timeout and the margin; the callback has a lease of its own, taken with the answer', async () => {
    const gate = deferred<AttemptOutput>();
    const hung = deferred<AttemptOutput>();
    const { deps, newJob, job, clock } = setup(replies([() => hung.promise], [gate.promise]));
    const plain = await newJob({ timeout_ms: 2_500 });
    const withCallback = await newJob({ timeout_ms: 2_500, callback });
    void runJobAttempt(deps, plain);
    const calling = runJobAttempt(deps, withCallback);
    await settle();
    expect(((await job(plain)).leaseUntil ?? 0) - clock.now()).toBe(2_500 + leaseMarginMs);
    expect(((await job(withCallback)).leaseUntil ?? 0) - clock.now()).toBe(2_500 + leaseMarginMs);
    clock.advance(700);
    hung.resolve(answer(200));
    await settle();
    const calledBack = await job(withCallback);
    expect(calledBack.leaseUntil).toBeUndefined();
    expect((calledBack.notifyLeaseUntil ?? 0) - clock.now()).toBe(jobLimits.callbackTimeoutMs + leaseMarginMs);
    gate.resolve(answer(200));
    expect(await calling).toEqual({ done: true });
  });

  it('a worker in its callback holds the callback\'s lease: a redelivery meanwhile makes no service call and waits for that lease', async () => {
    const gate = deferred<AttemptOutput>();
    const { deps, newJob, job, clock, http } = setup(replies([answer(200)], [gate.promise]));
    const jobId = await newJob({ timeout_ms: 1_000, callback });
    const first = runJobAttempt(deps, jobId);
    await settle();
    expect(urls(http)).toEqual([service, callback]);
    const { notifyLeaseUntil = 0 } = await job(jobId);
    clock.advance(1_000 + leaseMarginMs + 1);
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: false, retryAfterMs: notifyLeaseUntil - clock.now() });
    expect(http.to(service)).toHaveLength(1);
    gate.resolve(answer(200));
    expect(await first).toEqual({ done: true });
    expect(await job(jobId)).toMatchObject({ status: 'completed', attempts: 1, notified: 'true', notifyAttempts: 1 });
  });

  it('a lease still running postpones the message until it expires', async () => {
    const { deps, jobId, clock, http, leaseUntil } = await heldByACrashedWorker();
    clock.advance(5_000);
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: false, retryAfterMs: leaseUntil - clock.now() });
    expect(http.requests).toHaveLength(1);
  });

  it('an expired lease is taken over, and the attempt runs again under the same number', async () => {
    const { deps, jobId, clock, http, job, leaseUntil } = await heldByACrashedWorker();
    clock.set(leaseUntil + 1);
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: true });
    expect(http.requests).toHaveLength(2);
    const settled = await job(jobId);
    expect(settled).toMatchObject({ status: 'completed', attempts: 1, output: { body: 'second worker' } });
    expect(settled.history).toEqual([expect.objectContaining({ attempt: 1, statusCode: 200 })]);
  });

  it('a worker whose lease was taken over does not overwrite the result that stands', async () => {
    const { deps, jobId, clock, job, leaseUntil, hung, crashed } = await heldByACrashedWorker();
    clock.set(leaseUntil + 1);
    await runJobAttempt(deps, jobId);
    const standing = await job(jobId);
    hung.resolve(answer(500, 'late'));
    expect(await crashed).toEqual({ done: true });
    expect(await job(jobId)).toEqual(standing);
  });

  it('a worker whose callback lease ran out during its callback writes nothing: the attempt that took over stands, and the service was called once', async () => {
    const late = deferred<AttemptOutput>();
    const { deps, newJob, job, clock, queue, http } = setup(replies([answer(200, 'first')], [late.promise, answer(200)]));
    const jobId = await newJob({ timeout_ms: 1_000, callback });
    const stalled = runJobAttempt(deps, jobId);
    await settle();
    const { notifyLeaseUntil = 0 } = await job(jobId);
    clock.set(notifyLeaseUntil + 1);
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: true });
    const standing = await job(jobId);
    expect(standing).toMatchObject({ status: 'completed', attempts: 1, output: { body: 'first' }, notified: 'true', notifyAttempts: 1 });

    // The stalled worker's callback finally fails retryably: its write is refused, and it hands nothing back.
    late.resolve(answer(503));
    expect(await stalled).toEqual({ done: true });
    expect(await job(jobId)).toEqual(standing);
    expect(queue.sent).toEqual([]);
    expect(urls(http)).toEqual([service, callback, callback]);
  });
});

describe('the callback', () => {
  /** A job with a callback, run to its end: its first callback attempt has been made, inline. */
  async function calledBack(script: Script, fields: Record<string, unknown> = {}) {
    const world = setup(script);
    const jobId = await world.newJob({ callback, headers: { Authorization: 'Bearer service-secret-token' }, ...fields });
    const first = await runJobAttempt(world.deps, jobId);
    expect(world.http.to(callback)).toHaveLength(1);
    return { ...world, jobId, first };
  }

  it('carries the seed\'s fields and the structured output, never the service\'s headers', async () => {
    const { jobId, http, job, alice } = await calledBack(replies([answer(200, 'service said hi')], [answer(204)]));
    const [sent] = http.to(callback);
    expect(sent).toBeDefined();
    expect(sent?.method).toBe('POST');
    expect(sent?.headers['content-type']).toBe('application/json');
    const body = JSON.parse(sent?.body ?? '{}') as Record<string, unknown>;
    const settled = await job(jobId);
    expect(body).toMatchObject({
      jobId,
      clientId: alice.client.clientId,
      status: 'completed',
      lastUpdate: settled.lastUpdate,
      job_output: 'service said hi',
      output: { statusCode: 200, body: 'service said hi' },
    });
    expect(sent?.body).not.toContain('service-secret-token');
    expect(sent?.body).not.toContain('Authorization');
    expect(Object.keys(sent?.headers ?? {}).map((name) => name.toLowerCase())).not.toContain('authorization');
  });

  it('is signed per Standard Webhooks with the client\'s secret', async () => {
    const { http, alice } = await calledBack(() => answer(200));
    const [sent] = http.to(callback);
    expect(() => new Webhook(alice.secret).verify(sent?.body ?? '', sent?.headers ?? {})).not.toThrow();
    expect(() => new Webhook(testClient('x').secret).verify(sent?.body ?? '', sent?.headers ?? {})).toThrow();
    expect(() => new Webhook(alice.secret).verify(`${sent?.body ?? ''} `, sent?.headers ?? {})).toThrow();
  });

  it('keeps its webhook-id (the job id) and its body on every retry while webhook-timestamp follows the clock', async () => {
    const { deps, jobId, http, clock, alice, job, first } = await calledBack(replies([answer(200)], [answer(503), answer(503), answer(200)]));
    const times = [clock.now()]; // the first attempt
    let wait = first.done ? 0 : first.retryAfterMs;
    for (;;) {
      clock.advance(Math.max(wait, 1000));
      times.push(clock.now());
      const outcome = await runJobAttempt(deps, jobId);
      if (outcome.done) break;
      wait = outcome.retryAfterMs;
      if (times.length > 10) throw new Error('the callback never settled');
    }
    const sent = http.to(callback);
    expect(sent).toHaveLength(3);
    expect(sent.map((request) => request.headers['webhook-id'])).toEqual([jobId, jobId, jobId]);
    expect(sent.map((request) => request.headers['webhook-timestamp'])).toEqual(times.map((at) => String(Math.floor(at / 1000))));
    expect(new Set(sent.map((request) => request.body)).size).toBe(1);
    for (const request of sent) expect(() => new Webhook(alice.secret).verify(request.body ?? '', request.headers)).not.toThrow();
    expect(await job(jobId)).toMatchObject({ notified: 'true', notifyoutput: '200', notifyAttempts: 3 });
  });

  it('a 2xx settles it as notified "true" with notifyoutput "200"', async () => {
    const { jobId, job } = await calledBack(() => answer(200));
    expect(await job(jobId)).toMatchObject({ notified: 'true', notifyoutput: '200', notifyAttempts: 1 });
  });

  it('is sent for a failed job too', async () => {
    const { http, jobId, job } = await calledBack(replies([answer(410)], [answer(200)]));
    const [sent] = http.to(callback);
    expect(JSON.parse(sent?.body ?? '{}')).toMatchObject({ status: 'failed', output: { statusCode: 410 } });
    expect(await job(jobId)).toMatchObject({ status: 'failed', notified: 'true' });
  });

  it('failing until callback_max_attempts is "notification failed"', async () => {
    const { deps, jobId, job, http, clock } = await calledBack(replies([answer(200)], [answer(500)]), { callback_max_attempts: 2 });
    await runToEnd(deps, clock, runCallbackAttempt, jobId);
    expect(http.to(callback)).toHaveLength(2);
    expect(await job(jobId)).toMatchObject({ notified: 'notification failed', notifyoutput: '500', notifyAttempts: 2 });
    // Settled: a redelivery calls nobody.
    expect(await runCallbackAttempt(deps, jobId)).toEqual({ done: true });
    expect(http.to(callback)).toHaveLength(2);
  });

  it('a retry that fails again schedules the next one; a message that arrives before it is due is postponed, without a call', async () => {
    const { deps, jobId, http, clock, job } = await calledBack(replies([answer(200)], [answer(503)]));
    clock.advance(firstRetryMs);
    const second = await runCallbackAttempt(deps, jobId);
    expect(http.to(callback)).toHaveLength(2);
    const delay = second.done ? 0 : second.retryAfterMs;
    expect(delay).toBe(backoffMs(2, retryTiming, () => draw));
    expect(await job(jobId)).toMatchObject({ notified: 'no', notifyAttempts: 2, nextNotifyAt: clock.now() + delay });
    expect((await job(jobId)).notifyLeaseUntil).toBeUndefined();
    clock.advance(100);
    // A duplicate message, or one a sweep re-queued, must not cut the backoff short.
    expect(await runCallbackAttempt(deps, jobId)).toEqual({ done: false, retryAfterMs: delay - 100 });
    expect(http.to(callback)).toHaveLength(2);
    expect(await job(jobId)).toMatchObject({ notified: 'no', notifyAttempts: 2 });
  });

  it('an error reaching the callback is its notifyoutput', async () => {
    const { jobId, job } = await calledBack(replies([answer(200)], [failure('ECONNREFUSED')]), { callback_max_attempts: 1 });
    expect(await job(jobId)).toMatchObject({ notified: 'notification failed', notifyoutput: 'ECONNREFUSED' });
  });

  it('is not sent before the job is settled', async () => {
    const { deps, newJob, http } = setup();
    const jobId = await newJob({ callback });
    expect(await runCallbackAttempt(deps, jobId)).toEqual({ done: true });
    expect(http.requests).toEqual([]);
  });

  it('two workers given the same callback message call it once', async () => {
    const gate = deferred<AttemptOutput>();
    const called = deferred();
    // The inline attempt fails; the retry, attempt 2, is what the two workers race for.
    const { deps, jobId, http, job, clock } = await calledBack(
      replies(
        [answer(200)],
        [
          answer(503),
          () => {
            called.resolve();
            return gate.promise;
          },
        ],
      ),
    );
    clock.advance(firstRetryMs);
    const one = runCallbackAttempt(deps, jobId);
    const two = runCallbackAttempt(deps, jobId);
    await called.promise;
    // The loser does not wait on the winner's call: it is postponed while the callback lease runs.
    const loser = await Promise.race([one, two]);
    expect(loser).toEqual({ done: false, retryAfterMs: jobLimits.callbackTimeoutMs + leaseMarginMs });
    gate.resolve(answer(200));
    expect(await Promise.all([one, two])).toContainEqual({ done: true });
    expect(http.to(callback)).toHaveLength(2);
    expect(await job(jobId)).toMatchObject({ notified: 'true', notifyAttempts: 2 });
  });
});

describe('dead letters', () => {
  it('a dead-lettered job message fails a running job with a reason and queues its callback', async () => {
    const { deps, newJob, job, queue } = setup(() => answer(500));
    const jobId = await newJob({ callback });
    await runJobAttempt(deps, jobId);
    expect((await job(jobId)).status).toBe('running');
    await settleDeadLetter(deps, 'job', jobId);
    const settled = await job(jobId);
    expect(settled).toMatchObject({ status: 'failed', output: { error: expect.stringMatching(/dead-letter/) }, notified: 'no' });
    expect(settled.nextAttemptAt).toBeUndefined();
    expect(settled.leaseUntil).toBeUndefined();
    expect(queue.sent).toEqual([{ kind: 'callback', jobId }]);
  });

  it('a dead-lettered job message leaves a completed job as it is', async () => {
    const { deps, newJob, job, queue } = setup();
    const jobId = await newJob({ callback });
    await runJobAttempt(deps, jobId);
    queue.clear();
    const before = await job(jobId);
    await settleDeadLetter(deps, 'job', jobId);
    expect(await job(jobId)).toEqual(before);
    expect(queue.sent).toEqual([]);
  });

  it('a dead-lettered callback message settles a pending callback as "notification failed"', async () => {
    const { deps, newJob, job } = setup(replies([answer(200)], [answer(503)]));
    const jobId = await newJob({ callback });
    await runJobAttempt(deps, jobId);
    expect((await job(jobId)).notified).toBe('no');
    await settleDeadLetter(deps, 'callback', jobId);
    const settled = await job(jobId);
    expect(settled).toMatchObject({ status: 'completed', notified: 'notification failed', notifyoutput: expect.stringMatching(/dead-letter/) });
    expect(settled.nextNotifyAt).toBeUndefined();
    expect(settled.sweep).toBeUndefined();
  });

  it('a dead-lettered callback message leaves a delivered callback as it is', async () => {
    const { deps, newJob, job } = setup();
    const jobId = await newJob({ callback });
    await runJobAttempt(deps, jobId);
    await settleDeadLetter(deps, 'callback', jobId);
    expect(await job(jobId)).toMatchObject({ notified: 'true', notifyoutput: '200' });
  });

  it('a dead-lettered job message that was carrying a pending callback settles the callback as "notification failed"', async () => {
    const { deps, newJob, job, queue } = setup(replies([answer(200)], [answer(503)]));
    const jobId = await newJob({ callback });
    await runJobAttempt(deps, jobId);
    expect(await job(jobId)).toMatchObject({ status: 'completed', notified: 'no' });
    await settleDeadLetter(deps, 'job', jobId);
    const settled = await job(jobId);
    expect(settled).toMatchObject({ status: 'completed', output: { statusCode: 200 }, notified: 'notification failed', notifyoutput: expect.stringMatching(/job message was dead-lettered/) });
    expect(settled.sweep).toBeUndefined();
    expect(queue.sent).toEqual([]);
  });

  it('a dead-lettered message for a job that is gone is ignored', async () => {
    const { deps, queue } = setup();
    await expect(settleDeadLetter(deps, 'job', '8a6e0804-2bd0-4672-b79d-d97027f9071e')).resolves.toBeUndefined();
    await expect(settleDeadLetter(deps, 'callback', '8a6e0804-2bd0-4672-b79d-d97027f9071e')).resolves.toBeUndefined();
    expect(queue.sent).toEqual([]);
  });
});

/** The local stack's queue lives in memory: every job is indexed from submit on, so a restart finds it. */
const volatileQueue = { indexEveryJob: true };

describe('requeueUnsettled after a crash', () => {
  it('re-queues unsettled jobs and callbacks and expires their leases, so they resume at once under the same number', async () => {
    // The first service call and the third callback call never return: their workers crashed.
    const hung = deferred<AttemptOutput>();
    const { deps, newJob, job, queue, http, jobs, clock } = setup(
      replies(
        [hung.promise, answer(200)],
        [
          answer(503), // calledBack's inline attempt: a retry is due later
          answer(200), // delivered's inline attempt
          hung.promise, // calledBack's attempt 2: crashes
          answer(200),
        ],
      ),
      volatileQueue,
    );

    const interrupted = await newJob({ callback }); // crashes mid-attempt
    void runJobAttempt(deps, interrupted);
    await settle();
    const waiting = await newJob(); // accepted, its message lost
    const calledBack = await newJob({ callback }); // completes; its callback retry crashes
    await runJobAttempt(deps, calledBack);
    const delivered = await newJob({ callback }); // completes and calls back inline
    await runJobAttempt(deps, delivered);
    clock.advance(firstRetryMs);
    void runCallbackAttempt(deps, calledBack);
    await settle();
    const failedAlone = await newJob(); // failed, no callback, still indexed
    await jobs.update(failedAlone, { status: 'failed' }, {});
    expect(await job(interrupted)).toMatchObject({ status: 'started', attempts: 1, leaseUntil: expect.any(Number) });
    expect(await job(calledBack)).toMatchObject({ status: 'completed', notified: 'no', notifyAttempts: 2, notifyLeaseUntil: expect.any(Number) });
    expect((await job(delivered)).notified).toBe('true');
    // Both leases still run: only expireLeases frees them.
    expect((await job(interrupted)).leaseUntil ?? 0).toBeGreaterThan(clock.now());
    expect((await job(calledBack)).notifyLeaseUntil ?? 0).toBeGreaterThan(clock.now());
    queue.clear();
    const calls = http.requests.length;

    const report = await requeueUnsettled(deps, { expireLeases: true });
    expect(report).toEqual({ jobs: 2, callbacks: 1, leasesExpired: 2 });
    expect(queue.sent).toHaveLength(3);
    expect(queue.sent).toEqual(
      expect.arrayContaining([
        { kind: 'job', jobId: interrupted },
        { kind: 'job', jobId: waiting },
        { kind: 'callback', jobId: calledBack },
      ]),
    );
    expect((await job(interrupted)).leaseUntil).toBe(0);
    expect((await job(calledBack)).notifyLeaseUntil).toBe(0);
    expect((await job(failedAlone)).sweep).toBeUndefined();

    // No time passes: the expired leases hold nothing up.
    expect(await runJobAttempt(deps, interrupted)).toEqual({ done: true });
    expect(await job(interrupted)).toMatchObject({ status: 'completed', attempts: 1, notified: 'true', notifyAttempts: 1 });
    expect(await runCallbackAttempt(deps, calledBack)).toEqual({ done: true });
    expect(await job(calledBack)).toMatchObject({ notified: 'true', notifyAttempts: 2 });
    expect(await runJobAttempt(deps, waiting)).toEqual({ done: true });
    expect(await job(waiting)).toMatchObject({ status: 'completed', attempts: 1 });
    expect(http.requests.slice(calls).map((request) => request.url)).toEqual([service, callback, callback, service]);
  });

  it('without expireLeases, a running lease still holds its job', async () => {
    const hung = deferred<AttemptOutput>();
    const { deps, newJob, job, queue, http } = setup(() => hung.promise, volatileQueue);
    const jobId = await newJob();
    void runJobAttempt(deps, jobId);
    await settle();
    const report = await requeueUnsettled(deps);
    expect(report).toEqual({ jobs: 1, callbacks: 0, leasesExpired: 0 });
    expect(queue.sent).toEqual([{ kind: 'job', jobId }]);
    expect((await runJobAttempt(deps, jobId)).done).toBe(false);
    expect(http.requests).toHaveLength(1);
    expect((await job(jobId)).leaseUntil).toBeGreaterThan(0);
  });

  it('settled work leaves the unsettled set; work with a pending callback stays in it', async () => {
    // Callback calls: calledBack's inline attempt fails, deliveredAtOnce's succeeds, calledBack's retries fail.
    const { deps, newJob, jobs, clock } = setup(replies([answer(200)], [answer(500), answer(200), answer(500)]), volatileQueue);
    const found = () => unsettledIds(jobs);
    const plain = await newJob();
    const calledBack = await newJob({ callback, callback_max_attempts: 2 });
    const deliveredAtOnce = await newJob({ callback });
    const deadLettered = await newJob();
    expect(await found()).toEqual([plain, calledBack, deliveredAtOnce, deadLettered].sort());

    await runJobAttempt(deps, plain);
    await runJobAttempt(deps, calledBack);
    await runJobAttempt(deps, deliveredAtOnce);
    await settleDeadLetter(deps, 'job', deadLettered);
    expect(await found()).toEqual([calledBack]);

    await runToEnd(deps, clock, runCallbackAttempt, calledBack);
    expect((await jobs.get(calledBack))?.notified).toBe('notification failed');
    expect(await found()).toEqual([]);
  });

  it('with idleMs, skips jobs touched recently', async () => {
    const { deps, newJob, queue, clock } = setup(undefined, volatileQueue);
    const old = await newJob();
    clock.advance(60_000);
    await newJob();
    const report = await requeueUnsettled(deps, { idleMs: 30_000 });
    expect(report.jobs).toBe(1);
    expect(queue.sent).toEqual([{ kind: 'job', jobId: old }]);
  });
});

/** A job as submit stores it, accepted at `now`. */
function storedJob(jobId: string, now: number): Job {
  return acceptedJob({ jobId, created: new Date(now).toISOString(), service });
}

describe('a queue that keeps its messages (SQS)', () => {
  it('a first delivery takes the first attempt in one conditional write, without reading the job first', async () => {
    const { deps, newJob, jobs } = setup();
    const jobId = await newJob();
    const reads = vi.spyOn(jobs, 'get');
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: true });
    expect(reads).not.toHaveBeenCalled();
    expect(jobs.updates.map((update) => update.applied)).toEqual([true, true]);
    expect(await jobs.get(jobId)).toMatchObject({ status: 'completed', attempts: 1 });
  });

  it('a job that succeeds at once never enters the sweeper\'s index; one waiting on a retry does, until it settles', async () => {
    const { deps, newJob, jobs, clock } = setup(replies([answer(503), answer(200)]));
    const jobId = await newJob();
    expect(await unsettledIds(jobs)).toEqual([]);
    const first = await runJobAttempt(deps, jobId);
    expect(await unsettledIds(jobs)).toEqual([jobId]);
    clock.advance(first.done ? 0 : first.retryAfterMs);
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: true });
    expect(await unsettledIds(jobs)).toEqual([]);
  });

  it('the sweeper re-queues a job waiting on a retry whose message was lost, once it is overdue', async () => {
    const { deps, newJob, queue, clock } = setup(replies([answer(503), answer(200)]));
    const jobId = await newJob();
    const first = await runJobAttempt(deps, jobId);
    clock.advance((first.done ? 0 : first.retryAfterMs) + 60_000);
    expect(await requeueUnsettled(deps, { idleMs: 30_000 })).toMatchObject({ jobs: 1 });
    expect(queue.sent).toEqual([{ kind: 'job', jobId }]);
  });

  it('a first delivery that finds no job waits a moment for submit\'s write, and runs the job once it is there', async () => {
    const { deps, jobs, clock, http } = setup();
    const early = '0b6d2c55-3f0e-4f7e-9d49-0a3b3d7c9b21';
    const waits: number[] = [];
    deps.sleep = async (ms) => {
      waits.push(ms);
      clock.advance(ms);
      // Submit's write lands during the second wait.
      if (waits.length === 2) await jobs.create(storedJob(early, clock.now()), { url: service, method: 'POST', headers: {}, body: null });
    };
    expect(await runJobMessage(deps, early, { sentAt: clock.now(), leaseMs: 10_000 + leaseMarginMs, receiveCount: 1 })).toEqual({ done: true });
    expect(waits).toEqual([20, 80]);
    expect(http.requests).toHaveLength(1);
  });

  it('a message that arrives well before its job is stored is tried again a second later, and runs once the job is there', async () => {
    const { deps, jobs, clock, http } = setup();
    const early = '0b6d2c55-3f0e-4f7e-9d49-0a3b3d7c9b21';
    deps.sleep = async (ms) => clock.advance(ms);
    const facts = { sentAt: clock.now(), leaseMs: 10_000 + leaseMarginMs, receiveCount: 1 };
    expect(await runJobMessage(deps, early, facts)).toEqual({ done: false, retryAfterMs: 1_000 });
    await jobs.create(storedJob(early, clock.now()), { url: service, method: 'POST', headers: {}, body: null });
    clock.advance(1_000);
    expect(await runJobMessage(deps, early, { ...facts, receiveCount: 2 })).toEqual({ done: true });
    expect(http.requests).toHaveLength(1);
  });

  it('a message whose job was never stored (its submit failed) is dropped once the API can no longer be writing it', async () => {
    const { deps, clock, http } = setup();
    const sentAt = clock.now();
    clock.advance(submitWriteWindowMs);
    expect(await runJobMessage(deps, '0b6d2c55-3f0e-4f7e-9d49-0a3b3d7c9b21', { sentAt, leaseMs: 25_000, receiveCount: 3 })).toEqual({ done: true });
    expect(http.requests).toHaveLength(0);
  });
});

it('callback attempts, inline or retried, use the fixed callback timeout', async () => {
  const { deps, newJob, http, clock } = setup(replies([answer(200)], [answer(503), answer(200)]));
  const jobId = await newJob({ callback, timeout_ms: 500 });
  await runJobAttempt(deps, jobId);
  clock.advance(firstRetryMs);
  await runCallbackAttempt(deps, jobId);
  expect(http.requests.map((request) => [request.url, request.timeoutMs])).toEqual([
    [service, 500],
    [callback, jobLimits.callbackTimeoutMs],
    [callback, jobLimits.callbackTimeoutMs],
  ]);
});

describe('the function\'s deadline', () => {
  const tooLate = (now: number) => ({ deadline: now + 5_000 });

  it('a first delivery with too little time left to run and record its attempt is handed back at once, untouched', async () => {
    const { deps, newJob, job, jobs, http, clock } = setup();
    const jobId = await newJob({ callback });
    const before = jobs.updates.length;
    expect(await runJobMessage(deps, jobId, { ...messages.get(jobId), receiveCount: 1, ...tooLate(clock.now()) })).toEqual({ done: false, retryAfterMs: 0 });
    expect(jobs.updates.length).toBe(before);
    expect(http.requests).toEqual([]);
    expect(await job(jobId)).toMatchObject({ status: 'accepted', attempts: 0 });
  });

  it('a retry with too little time left is handed back before its lease is taken', async () => {
    const { deps, newJob, job, http, clock } = setup(replies([answer(503), answer(200)]));
    const jobId = await newJob();
    await runJobAttempt(deps, jobId);
    clock.advance(firstRetryMs);
    expect(await runJobMessage(deps, jobId, { receiveCount: 2, ...tooLate(clock.now()) })).toEqual({ done: false, retryAfterMs: 0 });
    expect(http.requests).toHaveLength(1);
    expect(await job(jobId)).toMatchObject({ status: 'running', attempts: 1 });
    expect((await job(jobId)).leaseUntil).toBeUndefined();
    // With a whole invocation ahead, it runs.
    expect(await runJobMessage(deps, jobId, { receiveCount: 3, deadline: clock.now() + 90_000 })).toEqual({ done: true });
    expect(http.requests).toHaveLength(2);
  });

  it('a callback attempt with too little time left is handed back before its lease is taken', async () => {
    const { deps, newJob, job, http, clock } = setup(replies([answer(200)], [answer(503), answer(200)]));
    const jobId = await newJob({ callback });
    await runJobAttempt(deps, jobId);
    clock.advance(firstRetryMs);
    expect(await runCallbackAttempt(deps, jobId, tooLate(clock.now()))).toEqual({ done: false, retryAfterMs: 0 });
    expect(http.to(callback)).toHaveLength(1);
    expect((await job(jobId)).notifyLeaseUntil).toBeUndefined();
  });
});

describe('a write whose answer was lost', () => {
  /** The store's client retried a write that had landed: the retry's condition fails on the first's effect. */
  function loseTheAnswerOfTheNextWrite(jobs: MemoryJobStore, which: (changes: Parameters<MemoryJobStore['update']>[1]) => boolean) {
    const update = jobs.update.bind(jobs);
    let armed = true;
    jobs.update = async (jobId, changes, condition) => {
      await update(jobId, changes, condition);
      if (armed && which(changes)) {
        armed = false;
        throw new ConditionFailed('the retried write found its own first write');
      }
    };
  }

  it('recording the answer: the callback is still made and recorded, and the service was called once', async () => {
    const { deps, newJob, job, jobs, http } = setup(replies([answer(200, 'answered')], [answer(200)]));
    const jobId = await newJob({ callback });
    loseTheAnswerOfTheNextWrite(jobs, (changes) => changes.output !== undefined);
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: true });
    expect(urls(http)).toEqual([service, callback]);
    expect(await job(jobId)).toMatchObject({ status: 'completed', notified: 'true', notifyAttempts: 1 });
  });

  it('scheduling a retry: the message still comes back for it, rather than being dropped', async () => {
    const { deps, newJob, job, jobs } = setup(replies([answer(503), answer(200)]));
    const jobId = await newJob();
    loseTheAnswerOfTheNextWrite(jobs, (changes) => changes.status === 'running');
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: false, retryAfterMs: firstRetryMs });
    expect(await job(jobId)).toMatchObject({ status: 'running', attempts: 1 });
  });

  it('scheduling a callback retry: the message still comes back for it, rather than being left to the sweeper', async () => {
    const { deps, newJob, job, jobs } = setup(replies([answer(200)], [answer(503), answer(200)]));
    const jobId = await newJob({ callback });
    loseTheAnswerOfTheNextWrite(jobs, (changes) => changes.nextNotifyAt !== undefined);
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: false, retryAfterMs: firstRetryMs });
    expect(await job(jobId)).toMatchObject({ status: 'completed', notifyAttempts: 1 });
  });

  it('another worker\'s write is not taken for ours: a worker whose lease was taken over still writes nothing more', async () => {
    const { deps, jobId, job, clock, http, leaseUntil, hung, crashed } = await heldByACrashedWorker();
    clock.set(leaseUntil + 1);
    expect(await runJobAttempt(deps, jobId)).toEqual({ done: true });
    const standing = await job(jobId);
    hung.resolve(answer(500, 'late'));
    expect(await crashed).toEqual({ done: true });
    expect(await job(jobId)).toEqual(standing);
    expect(http.requests).toHaveLength(2);
  });
});

describe('what the core tells (its Telemetry: the functions\' metrics)', () => {
  /** Every count and duration told, in order. */
  const recorder = () => {
    const told: string[] = [];
    const telemetry = {
      count: (metric: string, value = 1) => void told.push(`${metric} ${value}`),
      duration: (metric: string, ms: number) => void told.push(`${metric} ${ms}ms`),
    };
    return { told, telemetry };
  };

  it('a job accepted, called twice (a retry, then a 200) and called back: each thing once, after its write', async () => {
    const { told, telemetry } = recorder();
    const world = setup(replies([answer(503), answer(200)]));
    const jobId = await world.newJob({ callback });
    world.deps.telemetry = telemetry;
    await runJobAttempt(world.deps, jobId);
    world.clock.advance(firstRetryMs);
    await runJobAttempt(world.deps, jobId);
    expect(told).toEqual(['AttemptDuration 12ms', 'RetriesScheduled 1', 'AttemptDuration 12ms', 'JobsCompleted 1', 'CallbacksDelivered 1']);
  });

  it('counts JobsAccepted for a new job, not for a repeat of its Idempotency-Key', async () => {
    const { told, telemetry } = recorder();
    const { jobs, queue, clock, alice } = setup();
    const deps = { jobs, queue, clock, retentionDays: 30, refuse: async () => undefined, telemetry };
    await submit(deps, alice.client, { service }, 'key-1');
    await submit(deps, alice.client, { service }, 'key-1');
    expect(told).toEqual(['JobsAccepted 1']);
  });

  it('a callback that fails then is given up on, and a job failed by its answer', async () => {
    const { told, telemetry } = recorder();
    const world = setup(replies([answer(404)], [answer(500)]));
    const jobId = await world.newJob({ callback, callback_max_attempts: 2 });
    world.deps.telemetry = telemetry;
    await runJobAttempt(world.deps, jobId);
    world.clock.advance(firstRetryMs);
    await runJobAttempt(world.deps, jobId);
    expect(told).toEqual(['AttemptDuration 12ms', 'JobsFailed 1', 'CallbackFailures 1', 'RetriesScheduled 1', 'CallbackFailures 1', 'CallbacksAbandoned 1']);
  });

  it('a worker whose lease was taken over tells nothing: the attempt that stands was told once', async () => {
    const { told, telemetry } = recorder();
    const { deps, jobId, clock, leaseUntil, hung, crashed } = await heldByACrashedWorker();
    deps.telemetry = telemetry;
    clock.set(leaseUntil + 1);
    await runJobAttempt(deps, jobId);
    hung.resolve(answer(500, 'late'));
    await crashed;
    expect(told).toEqual(['AttemptDuration 12ms', 'JobsCompleted 1']);
  });

  it('a dead-lettered job counts as failed', async () => {
    const { told, telemetry } = recorder();
    const world = setup();
    const jobId = await world.newJob();
    await settleDeadLetter({ ...world.deps, telemetry }, 'job', jobId);
    expect(told).toEqual(['JobsFailed 1']);
  });
});

describe('a job cancelled', () => {
  /** Cancels the job as DELETE /v1/jobs/{id} does, for its client. */
  const cancel = (world: ReturnType<typeof setup>, jobId: string) =>
    cancelJob({ jobs: world.jobs, queue: world.queue, clock: world.clock, retentionDays: 30, refuse: async () => undefined }, world.alice.client, jobId);

  it('while a worker holds its attempt: the attempt runs to its end and is recorded under its lease, the job stays cancelled, and nobody is called back', async () => {
    const hung = deferred<AttemptOutput>();
    const world = setup(replies([() => hung.promise]));
    const jobId = await world.newJob({ callback, timeout_ms: 1_000 });
    const running = runJobAttempt(world.deps, jobId);
    await settle();
    const { leaseUntil } = await world.job(jobId);
    world.clock.advance(300);
    const cancelled = await cancel(world, jobId);
    expect(cancelled).toMatchObject({ status: 'cancelled', notified: 'n/a', callback, lastUpdate: new Date(world.clock.now()).toISOString() });
    // The lease stays with its worker.
    expect(cancelled.leaseUntil).toBe(leaseUntil);

    world.clock.advance(200);
    hung.resolve(answer(503, 'busy'));
    expect(await running).toEqual({ done: true });
    const recorded = await world.job(jobId);
    expect(recorded).toMatchObject({ status: 'cancelled', notified: 'n/a', attempts: 1, output: { statusCode: 503, body: 'busy' }, lastUpdate: new Date(world.clock.now()).toISOString() });
    expect(recorded.history).toEqual([expect.objectContaining({ attempt: 1, statusCode: 503 })]);
    for (const field of ['leaseUntil', 'nextAttemptAt', 'notifyLeaseUntil', 'sweep'] as const) expect(recorded[field], field).toBeUndefined();
    expect(urls(world.http)).toEqual([service]);
    expect(world.queue.sent).toEqual([]);
    // Its attempt is listed, as the record's last.
    expect(await jobAttempts({ ...world.deps, retentionDays: 30, refuse: async () => undefined }, world.alice.client, jobId)).toEqual([{ ...answer(503, 'busy'), attempt: 1 }]);
    // A redelivery of its message finds a final job, and makes neither call.
    expect(await runJobAttempt(world.deps, jobId)).toEqual({ done: true });
    expect(await runCallbackAttempt(world.deps, jobId)).toEqual({ done: true });
    expect(world.http.requests).toHaveLength(1);
  });

  it('while a worker holds its attempt that would have completed it: the answer is recorded, the job stays cancelled, with no callback', async () => {
    const hung = deferred<AttemptOutput>();
    const world = setup(replies([() => hung.promise]));
    const jobId = await world.newJob({ callback });
    const running = runJobAttempt(world.deps, jobId);
    await settle();
    await cancel(world, jobId);
    hung.resolve(answer(200, 'done'));
    expect(await running).toEqual({ done: true });
    expect(await world.job(jobId)).toMatchObject({ status: 'cancelled', notified: 'n/a', output: { statusCode: 200, body: 'done' }, notifyAttempts: 0 });
    expect(urls(world.http)).toEqual([service]);
  });

  it('while it waits on a retry: its message, when it comes back, makes no attempt, and the sweeper has nothing of it', async () => {
    const world = setup(replies([answer(503), answer(200)]), { indexEveryJob: true });
    const jobId = await world.newJob({ callback });
    const first = await runJobAttempt(world.deps, jobId);
    expect(first).toEqual({ done: false, retryAfterMs: firstRetryMs });
    expect(await unsettledIds(world.jobs)).toEqual([jobId]);
    await cancel(world, jobId);
    const waiting = await world.job(jobId);
    expect(waiting).toMatchObject({ status: 'cancelled', attempts: 1, output: { statusCode: 503 } });
    expect(waiting.nextAttemptAt).toBeUndefined();
    expect(await unsettledIds(world.jobs)).toEqual([]);

    world.clock.advance(firstRetryMs);
    expect(await runJobAttempt(world.deps, jobId)).toEqual({ done: true });
    expect(await runCallbackAttempt(world.deps, jobId)).toEqual({ done: true });
    expect(await requeueUnsettled(world.deps, { expireLeases: true })).toEqual({ jobs: 0, callbacks: 0, leasesExpired: 0 });
    expect(urls(world.http)).toEqual([service]);
    expect(await world.job(jobId)).toEqual(waiting);
  });

  it('before its first delivery: the message\'s one-write take finds it cancelled, and nothing is called', async () => {
    const world = setup();
    const jobId = await world.newJob({ callback });
    await cancel(world, jobId);
    const before = await world.job(jobId);
    expect(await runJobAttempt(world.deps, jobId)).toEqual({ done: true });
    expect(world.http.requests).toEqual([]);
    expect(await world.job(jobId)).toEqual(before);
    expect(world.jobs.updates.filter((update) => update.applied && update.changes.status !== 'cancelled')).toEqual([]);
  });

  it('a cancel and the answer that makes the job final, at once: exactly one of them wins, and a cancel after the final write is JobIsFinal', async () => {
    for (const cancelFirst of [true, false]) {
      const hung = deferred<AttemptOutput>();
      const world = setup(replies([() => hung.promise]));
      const jobId = await world.newJob({ callback });
      const running = runJobAttempt(world.deps, jobId);
      await settle();
      // The two writes race: the answer's write and the cancel's, each conditional on a job not final.
      const cancelling = cancelFirst ? cancel(world, jobId) : Promise.resolve().then(() => cancel(world, jobId));
      hung.resolve(answer(200, 'done'));
      const [cancelled, ran] = await Promise.allSettled([cancelling, running]);
      const settled = await world.job(jobId);
      if (cancelled.status === 'fulfilled') {
        expect(settled, 'cancel won').toMatchObject({ status: 'cancelled', notified: 'n/a', output: { statusCode: 200 } });
        expect(urls(world.http)).toEqual([service]);
      } else {
        expect(cancelled.reason, 'answer won').toBeInstanceOf(JobIsFinal);
        expect(settled).toMatchObject({ status: 'completed', notified: 'true' });
        expect(urls(world.http)).toEqual([service, callback]);
      }
      expect(ran).toEqual({ status: 'fulfilled', value: { done: true } });
    }
    // Once final, a cancel is JobIsFinal and changes nothing.
    const world = setup();
    const jobId = await world.newJob();
    await runJobAttempt(world.deps, jobId);
    const completed = await world.job(jobId);
    await expect(cancel(world, jobId)).rejects.toThrow(new JobIsFinal('completed'));
    expect(await world.job(jobId)).toEqual(completed);
  });
});

describe('every attempt kept', () => {
  const manage = (world: ReturnType<typeof setup>) => ({ jobs: world.jobs, queue: world.queue, clock: world.clock, retentionDays: 30, refuse: async () => undefined });

  it('a job retried to its end lists every attempt, oldest first, each with its answer or its error; each one followed by a retry is kept apart before its write', async () => {
    const outputs = [failure('ECONNRESET: the connection closed'), answer(503, 'busy', { 'retry-after': '1' }), answer(429, 'slow down'), answer(200, 'fine', { 'content-type': 'text/plain' })];
    const world = setup(replies(outputs));
    const jobId = await world.newJob();
    const messages = await runToEnd(world.deps, world.clock, runJobAttempt, jobId);
    expect(messages).toBe(4);
    const listed = await jobAttempts(manage(world), world.alice.client, jobId);
    expect(listed).toEqual(outputs.map((output, i) => ({ ...output, attempt: i + 1 })));
    // The last is the job's own output: only the attempts followed by a retry have items of their own.
    expect([...(world.jobs.kept.get(jobId)?.keys() ?? [])]).toEqual([1, 2, 3]);
  });

  it('a job that succeeds at once keeps nothing apart: its one attempt is its output', async () => {
    const world = setup(replies([answer(200, 'ok')]));
    const jobId = await world.newJob();
    await runJobAttempt(world.deps, jobId);
    expect(world.jobs.kept.get(jobId)).toBeUndefined();
    expect(await jobAttempts(manage(world), world.alice.client, jobId)).toEqual([{ ...answer(200, 'ok'), attempt: 1 }]);
  });

  it('an attempt is kept before the write that records it: a job found waiting on its retry always has it', async () => {
    const world = setup(replies([answer(500, 'first'), answer(200)]));
    const jobId = await world.newJob();
    const update = world.jobs.update.bind(world.jobs);
    let keptFirst: boolean | undefined;
    world.jobs.update = async (id, changes, condition) => {
      if (changes.status === 'running' && changes.output) keptFirst = world.jobs.kept.get(id)?.has(1) ?? false;
      return update(id, changes, condition);
    };
    await runJobAttempt(world.deps, jobId);
    expect(keptFirst).toBe(true);
  });

  it('a takeover that runs an attempt again keeps its own output under the same number, once', async () => {
    const { deps, jobId, clock, leaseUntil, jobs, alice, queue } = await heldByACrashedWorker(() => answer(502, 'second worker'));
    clock.set(leaseUntil + 1);
    await runJobAttempt(deps, jobId);
    const listed = await jobAttempts({ jobs, queue, clock, retentionDays: 30, refuse: async () => undefined }, alice.client, jobId);
    expect(listed).toEqual([{ ...answer(502, 'second worker'), attempt: 1 }]);
  });

  it('a dead-lettered job lists the attempts it made, not the reason it was given up on', async () => {
    const world = setup(replies([answer(503, 'busy')]));
    const jobId = await world.newJob();
    await runJobAttempt(world.deps, jobId);
    await settleDeadLetter(world.deps, 'job', jobId);
    expect((await world.job(jobId)).output?.error).toMatch(/^abandoned/);
    expect(await jobAttempts(manage(world), world.alice.client, jobId)).toEqual([{ ...answer(503, 'busy'), attempt: 1 }]);
  });
});
