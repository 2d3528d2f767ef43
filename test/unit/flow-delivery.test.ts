/**
 * Flow control as a job meets it: v1's flow_* fields (400 problems naming the field, stored and
 * shown), and delivery held back by its key (no lease, no attempt, its message sent afresh), let
 * in once its key has room, its slot let go, and a 429 or 503 with Retry-After pausing its key.
 */
import { describe, expect, it } from 'vitest';
import type { ApiRequest } from '../../lambdas/core/api.ts';
import { runJobAttempt, type DeliveryDeps, type JobMessageFacts } from '../../lambdas/core/deliver.ts';
import { FlowGate, FlowLimiter } from '../../lambdas/core/flow.ts';
import { cancelJob } from '../../lambdas/core/manage.ts';
import type { QueueMessage } from '../../lambdas/core/ports.ts';
import { heldBackTiming } from '../../lambdas/core/retry.ts';
import { accept, type JobInput } from '../../lambdas/core/submit.ts';
import { flowTiming } from '../../lib/definitions.ts';
import { callApi } from '../support/api.ts';
import { answer, deferred, ManualClock, MemoryClientStore, MemoryFlowStore, MemoryJobStore, MemoryWorkQueue, memoryApiDeps, ScriptedHttp, testClient, type Script } from '../support/memory.ts';

const url = 'https://service.example.com/hook';

function world(script: Script = () => answer(200, 'ok')) {
  const clock = new ManualClock(Date.parse('2026-12-02T03:04:05.006Z'));
  const jobs = new MemoryJobStore();
  const clients = new MemoryClientStore();
  const queue = new MemoryWorkQueue();
  const http = new ScriptedHttp(script);
  const flows = new MemoryFlowStore();
  const sleep = async (ms: number) => clock.advance(ms);
  const alice = testClient('11111111111111');
  const bob = testClient('22222222222222');
  for (const each of [alice, bob]) clients.clients.set(each.client.clientId, each.client);
  const deps: DeliveryDeps = { jobs, clients, queue, http, clock, sleep, random: () => 0.5, flow: new FlowGate(new FlowLimiter(flows, clock), { clock, sleep, random: () => 0.5 }) };
  /** Submits a job as v1 does; its first message as the queue hands it out the first time. */
  const submit = async (input: Partial<JobInput>, as = alice) => {
    queue.clear();
    const { job_id } = await accept({ jobs, queue, clock, retentionDays: 30, refuse: async () => undefined }, as.client, { service: url, urlField: 'url', ...input });
    const message = queue.sent[0] as QueueMessage;
    return { jobId: job_id, facts: { ...message, receiveCount: 1, sentAt: clock.now() } as JobMessageFacts };
  };
  return { clock, jobs, queue, http, flows, alice, bob, deps, submit };
}

describe('a job held back by its flow key', () => {
  it('takes no lease and spends no attempt; its message is sent afresh (its receives untouched), due when the key should have room', async () => {
    const { deps, submit, jobs, http, flows } = world();
    const first = await submit({ flow_key: 'tenant-1', flow_parallelism: 1 });
    const second = await submit({ flow_key: 'tenant-1', flow_parallelism: 1 });
    // The first's attempt is in flight: its target has not answered yet.
    const reply = deferred<ReturnType<typeof answer>>();
    http.script = () => reply.promise;
    const running = runJobAttempt(deps, first.jobId, first.facts);
    await new Promise((resolve) => setImmediate(resolve));

    const outcome = await runJobAttempt(deps, second.jobId, second.facts);
    expect(outcome).toEqual({
      done: false,
      retryAfterMs: heldBackTiming.minDelayMs,
      resend: { kind: 'job', jobId: second.jobId, leaseMs: second.facts.leaseMs, flow: second.facts.flow, held: 1 },
    });
    expect(await jobs.get(second.jobId)).toMatchObject({ status: 'accepted', attempts: 0 });
    expect((await jobs.get(second.jobId))?.leaseUntil).toBeUndefined();
    expect(http.requests).toHaveLength(1);

    reply.resolve(answer(200, 'ok'));
    await expect(running).resolves.toEqual({ done: true });
    // The slot went with the first's recorded answer: the second, come again, is let in.
    expect(Object.keys(flows.states.get(`11111111111111#tenant-1`)?.holders ?? {})).toEqual([]);
    const again = (outcome as { resend: QueueMessage }).resend;
    await expect(runJobAttempt(deps, second.jobId, { ...again, receiveCount: 1 })).resolves.toEqual({ done: true });
    expect(await jobs.get(second.jobId)).toMatchObject({ status: 'completed', attempts: 1 });
  });

  it('waits in its worker, within its budget, for a start its rate allows soon', async () => {
    const { deps, submit, jobs, clock } = world();
    const a = await submit({ flow_key: 'tenant-1', flow_rate: 2 });
    const b = await submit({ flow_key: 'tenant-1', flow_rate: 4 });
    const start = clock.now();
    await runJobAttempt(deps, a.jobId, a.facts);
    // b is the newest: its rate applies from its own start on; a's start spaced it by a's rate.
    await expect(runJobAttempt(deps, b.jobId, b.facts)).resolves.toEqual({ done: true });
    expect(clock.now() - start).toBeGreaterThanOrEqual((1_000 + flowTiming.startJitterMs) / 2);
    expect(await jobs.get(b.jobId)).toMatchObject({ status: 'completed', attempts: 1 });
  });

  it("is held back again on a retry by the job it reads (a retry's message takes no first attempt)", async () => {
    const { deps, submit, flows, jobs, clock } = world();
    const job = await submit({ flow_key: 'tenant-1', flow_parallelism: 1, max_attempts: 3 });
    deps.http = new ScriptedHttp(() => answer(500, 'busy'));
    const retry = await runJobAttempt(deps, job.jobId, job.facts);
    expect(retry).toMatchObject({ done: false });
    clock.advance((retry as { retryAfterMs: number }).retryAfterMs);
    // Another worker holds the key's one slot now.
    await flows.write('11111111111111', 'tenant-1', { version: 99, parallelism: 1, holders: { other: clock.now() + 60_000 } }, (await flows.read('11111111111111', 'tenant-1')).version);
    const held = await runJobAttempt(deps, job.jobId, { ...job.facts, receiveCount: 2 });
    expect(held).toMatchObject({ done: false, resend: { kind: 'job', jobId: job.jobId, held: 1 } });
    expect((held as { resend: QueueMessage }).resend).not.toHaveProperty('leaseMs');
    expect(await jobs.get(job.jobId)).toMatchObject({ status: 'running', attempts: 1 });
  });

  it("asks its key when its first message carries no ticket (the release's, for a job delayed beyond the queue's reach)", async () => {
    const { deps, submit, flows, jobs, http, clock } = world();
    const job = await submit({ flow_key: 'tenant-1', flow_parallelism: 1 });
    // Another worker holds the key's one slot.
    await flows.write('11111111111111', 'tenant-1', { version: 99, parallelism: 1, holders: { other: clock.now() + 60_000 } }, 0);
    const { flow: _ticket, ...released } = job.facts;
    const held = await runJobAttempt(deps, job.jobId, released);
    expect(held).toMatchObject({ done: false, resend: { kind: 'job', jobId: job.jobId, held: 1 } });
    expect(await jobs.get(job.jobId)).toMatchObject({ status: 'accepted', attempts: 0 });
    expect(http.requests).toHaveLength(0);
  });

  it('lets its slot go when the job was cancelled before its lease could be taken', async () => {
    const { deps, submit, flows, jobs, clock, alice } = world();
    const job = await submit({ flow_key: 'tenant-1', flow_parallelism: 1 });
    await cancelJob({ jobs, clock, queue: deps.queue, retentionDays: 30, refuse: async () => undefined }, alice.client, job.jobId);
    await expect(runJobAttempt(deps, job.jobId, job.facts)).resolves.toEqual({ done: true });
    expect(flows.states.get('11111111111111#tenant-1')?.holders).toEqual({});
    expect(flows.calls.release).toBe(1);
  });

  it('lets its slot go when its attempt\'s handling throws', async () => {
    const { deps, submit, flows } = world(() => {
      throw new Error('the HTTP client broke');
    });
    const job = await submit({ flow_key: 'tenant-1', flow_parallelism: 1 });
    await expect(runJobAttempt(deps, job.jobId, job.facts)).rejects.toThrow('the HTTP client broke');
    expect(flows.states.get('11111111111111#tenant-1')?.holders).toEqual({});
  });
});

describe('a 429 or 503 with Retry-After', () => {
  it('holds back every job of its key until then, not jobs of another key or another client', async () => {
    const { deps, submit, http, clock, alice, bob } = world();
    const limited = await submit({ flow_key: 'tenant-1', flow_parallelism: 10, max_attempts: 3 });
    http.script = (request, index) => (index === 0 ? answer(429, 'slow down', { 'retry-after': '2' }) : answer(200, 'ok'));
    const retry = await runJobAttempt(deps, limited.jobId, limited.facts);
    expect(retry).toEqual({ done: false, retryAfterMs: 2_000 });

    const sameKey = await submit({ flow_key: 'tenant-1', flow_parallelism: 10 }, alice);
    const held = await runJobAttempt(deps, sameKey.jobId, sameKey.facts);
    // Held back at once (its worker's wait would end inside the pause), for the pause and a random part.
    expect(held).toEqual({ done: false, retryAfterMs: 2_000 + 500, resend: { kind: 'job', jobId: sameKey.jobId, leaseMs: sameKey.facts.leaseMs, flow: sameKey.facts.flow, held: 1 } });

    const otherKey = await submit({ flow_key: 'tenant-2', flow_parallelism: 10 }, alice);
    await expect(runJobAttempt(deps, otherKey.jobId, otherKey.facts)).resolves.toEqual({ done: true });
    const otherClient = await submit({ flow_key: 'tenant-1', flow_parallelism: 10 }, bob);
    await expect(runJobAttempt(deps, otherClient.jobId, otherClient.facts)).resolves.toEqual({ done: true });

    clock.advance(2_000);
    await expect(runJobAttempt(deps, sameKey.jobId, { ...sameKey.facts, held: 1 })).resolves.toEqual({ done: true });
  });

  it('pauses nothing without Retry-After, or for another status', async () => {
    const { deps, submit, http, flows } = world();
    http.script = (_request, index) => [answer(429, 'no header'), answer(500, 'x', { 'retry-after': '5' })][index] ?? answer(200);
    const job = await submit({ flow_key: 'tenant-1', flow_parallelism: 10, max_attempts: 3 });
    await runJobAttempt(deps, job.jobId, job.facts);
    await runJobAttempt(deps, job.jobId, { ...job.facts, receiveCount: 2 });
    expect(flows.calls.pause).toBe(0);
  });
});

describe("v1's flow fields", () => {
  function api() {
    const clock = new ManualClock(Date.parse('2026-12-02T03:04:05.006Z'));
    const clients = new MemoryClientStore();
    const alice = testClient('11111111111111');
    clients.clients.set(alice.client.clientId, alice.client);
    const { jobs, queue, deps } = memoryApiDeps(clock, clients, { sleep: async (ms) => clock.advance(ms) });
    const authorization = `Basic ${Buffer.from(`${alice.client.clientId}:${alice.token}`).toString('base64')}`;
    const call = (request: Partial<ApiRequest>) => callApi(deps, { method: 'GET', path: '/', query: {}, body: undefined, ...request, headers: { authorization, ...request.headers } });
    const submit = (job: Record<string, unknown>) => call({ method: 'POST', path: '/v1/jobs', body: JSON.stringify(job) });
    return { jobs, queue, call, submit };
  }

  it('are stored under their names, shown by GET, and carried by the job\'s message', async () => {
    const { submit, call, queue, jobs } = api();
    const accepted = await submit({ url, flow_key: 'tenant-1', flow_rate: 0.5, flow_parallelism: 3 });
    expect(accepted.statusCode).toBe(202);
    const jobId = String(accepted.body['job_id']);
    const shown = await call({ path: `/v1/jobs/${jobId}` });
    expect(shown.body).toMatchObject({ flow_key: 'tenant-1', flow_rate: 0.5, flow_parallelism: 3 });
    expect(queue.sent[0]?.flow).toEqual({ clientId: '11111111111111', key: 'tenant-1', rate: 0.5, parallelism: 3, created: '2026-12-02T03:04:05.006Z' });
    expect(await jobs.get(jobId)).toMatchObject({ flowKey: 'tenant-1', flowRate: 0.5, flowParallelism: 3 });
    const plain = await submit({ url });
    expect((await call({ path: `/v1/jobs/${String(plain.body['job_id'])}` })).body).not.toHaveProperty('flow_key');
  });

  it.each([
    [{ flow_rate: 5 }, /^flow_rate: only with flow_key/],
    [{ flow_parallelism: 2 }, /^flow_parallelism: only with flow_key/],
    [{ flow_key: 'tenant-1' }, /^flow_key: needs flow_rate, flow_parallelism or both/],
    [{ flow_key: '', flow_rate: 1 }, /^flow_key must be 1 to 128 visible ASCII characters/],
    [{ flow_key: 'x'.repeat(129), flow_rate: 1 }, /^flow_key must be 1 to 128 visible ASCII characters/],
    [{ flow_key: 'with space', flow_rate: 1 }, /^flow_key must be 1 to 128 visible ASCII characters/],
    [{ flow_key: 'k', flow_rate: 0 }, /^flow_rate must be a number from 0.01 to 1000/],
    [{ flow_key: 'k', flow_rate: 1000.5 }, /^flow_rate must be a number from 0.01 to 1000/],
    [{ flow_key: 'k', flow_rate: '5' }, /^flow_rate must be a number from 0.01 to 1000/],
    [{ flow_key: 'k', flow_parallelism: 1.5 }, /^flow_parallelism must be an integer from 1 to 1000/],
    [{ flow_key: 'k', flow_parallelism: 1001 }, /^flow_parallelism must be an integer from 1 to 1000/],
  ])('refuses %j with a 400 problem naming the field and the rule', async (fields, detail) => {
    const { submit, queue } = api();
    const refused = await submit({ url, ...fields });
    expect(refused.statusCode).toBe(400);
    expect(refused.body['type']).toBe('urn:waas:problem:invalid-request');
    expect(String(refused.body['detail'])).toMatch(detail);
    expect(queue.sent).toEqual([]);
  });

  it('refuses a batch job at fault alone', async () => {
    const { call } = api();
    const answered = await call({ method: 'POST', path: '/v1/jobs/batch', body: JSON.stringify({ jobs: [{ url, flow_key: 'k', flow_rate: 20 }, { url, flow_parallelism: 3 }] }) });
    const results = answered.body['results'] as Array<Record<string, unknown>>;
    expect(results[0]).toMatchObject({ status: 'accepted' });
    expect(results[1]).toMatchObject({ error: { status: 400, detail: expect.stringMatching(/^jobs\[1\]: flow_parallelism: only with flow_key/) } });
  });
});
