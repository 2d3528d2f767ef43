/**
 * The client against the real local stack (`npm start`'s entry, as the e2e tests start it), a
 * target on 127.0.0.1 that answers 200, and a callback receiver on 127.0.0.1 (the local egress
 * allow-list lets jobs reach 127.0.0.0/8).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clients, demo, removeDir, startStack, startTarget, waitFor, type RunningStack, type Target } from '../../../test/e2e/harness.ts';
import { CallbackVerificationError, Waas, WaasError, verifyCallback, type JobRecord } from '../src/index.ts';

let stack: RunningStack;
let target: Target;
let receiver: Target;
let waas: Waas;
let signingSecret: string;

beforeAll(async () => {
  stack = await startStack();
  signingSecret = stack.output().match(/demo signing_secret:\s+(\S+)/)?.[1] ?? '';
  target = await startTarget((request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ got: request.method }));
  });
  receiver = await startTarget((_, response) => {
    response.writeHead(204);
    response.end();
  });
  waas = new Waas({ baseUrl: stack.url, clientId: demo.clientId, token: demo.verifyToken });
});

afterAll(async () => {
  await stack?.stop();
  await target?.close();
  await receiver?.close();
  if (stack) removeDir(stack.dataDir);
});

/** The callback the receiver got for a job, once it came (bounded). */
const callbackOf = (jobId: string) =>
  waitFor(() => receiver.received.find((request) => request.headers['webhook-id'] === jobId), 20_000, `the callback of ${jobId}`);

/** A client of its own, made with the clients CLI against the running stack: its jobs are the only ones it lists. */
function freshClient(): Waas {
  const made = clients(stack.dataDir, 'create', '--name', 'client-test');
  expect(made.status, made.stderr).toBe(0);
  const { client_id, verify_token } = made.json as { client_id: string; verify_token: string };
  return new Waas({ baseUrl: stack.url, clientId: client_id, token: verify_token });
}

describe('the TypeScript client, on the local stack', () => {
  it('submits a job that completes, and its real callback verifies', async () => {
    const accepted = await waas.submit({ url: `${target.url}/ok`, method: 'POST', body: { hello: 'world' }, callback: `${receiver.url}/cb` }, { idempotencyKey: 'client-test-1' });
    expect(accepted).toMatchObject({ status: 'accepted', job_id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    const again = await waas.submit({ url: `${target.url}/ok`, body: { hello: 'world' } }, { idempotencyKey: 'client-test-1' });
    expect(again.job_id).toBe(accepted.job_id);
    const callback = await callbackOf(accepted.job_id);
    const payload = waas.verifyCallback(callback.body, callback.headers, signingSecret);
    expect(payload).toMatchObject({ jobId: accepted.job_id, status: 'completed', output: { statusCode: 200 } });
    expect(target.received.filter((request) => request.headers['idempotency-key'] === accepted.job_id)).toHaveLength(1);
  });

  it('refuses a forged callback, an altered one, and one signed with another secret, with a named error', async () => {
    const { job_id } = await waas.submit({ url: `${target.url}/ok`, callback: `${receiver.url}/cb` });
    const callback = await callbackOf(job_id);
    expect(verifyCallback(Buffer.from(callback.body), callback.headers, signingSecret).jobId).toBe(job_id);
    const altered = callback.body.replace('"completed"', '"failed"');
    expect(altered).not.toBe(callback.body);
    expect(() => verifyCallback(altered, callback.headers, signingSecret)).toThrow(CallbackVerificationError);
    const forged = { ...callback.headers, 'webhook-signature': `v1,${Buffer.alloc(32).toString('base64')}` };
    expect(() => verifyCallback(callback.body, forged, signingSecret)).toThrow(CallbackVerificationError);
    const otherSecret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
    expect(() => verifyCallback(callback.body, callback.headers, otherSecret)).toThrow(/signature/);
    const unsigned = { ...callback.headers };
    delete unsigned['webhook-signature'];
    expect(() => verifyCallback(callback.body, unsigned, signingSecret)).toThrow(CallbackVerificationError);
  });

  it('submits a batch with one bad job: the others are accepted, the bad one refused with its problem', async () => {
    const results = await waas.submitBatch([{ url: `${target.url}/a` }, { url: 'ftp://not-http.example/' }, { url: `${target.url}/c`, idempotency_key: 'batch-c' }]);
    expect(results).toHaveLength(3);
    expect(results[0]).toMatchObject({ status: 'accepted' });
    expect(results[1]).toMatchObject({ error: { type: 'urn:waas:problem:invalid-request', status: 400, detail: expect.stringMatching(/^jobs\[1\]: url must be an absolute http\(s\) URL/) } });
    expect(results[2]).toMatchObject({ status: 'accepted' });
  });

  it('turns a problem into a WaasError with its type, title, status and detail', async () => {
    const misspelt = { url: `${target.url}/ok`, calback: `${receiver.url}/cb` } as unknown as Parameters<Waas['submit']>[0];
    const error = await waas.submit(misspelt).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(WaasError);
    expect(error).toMatchObject({
      name: 'WaasError',
      type: 'urn:waas:problem:invalid-request',
      title: 'The request is not valid',
      status: 400,
      detail: 'unknown field "calback" (did you mean "callback"?): v1 takes only the fields it documents',
      retryAfter: undefined,
    });
    const unauthorized = await new Waas({ baseUrl: stack.url, clientId: demo.clientId, token: 'wrong' }).submit({ url: `${target.url}/ok` }).catch((caught: unknown) => caught);
    expect(unauthorized).toMatchObject({ status: 401, type: 'urn:waas:problem:bad-credentials' });
    // A malformed id names no job: 404, never 400.
    await expect(waas.get('not-a-job-id')).rejects.toMatchObject({ status: 404, type: 'urn:waas:problem:job-not-found' });
  });

  it('carries Retry-After into the WaasError', async () => {
    const throttled = new Waas({
      baseUrl: 'http://127.0.0.1:9',
      clientId: demo.clientId,
      token: demo.verifyToken,
      fetch: async () =>
        new Response(JSON.stringify({ type: 'urn:waas:problem:too-many-failures', title: 'Too many failed attempts to authenticate', status: 429, detail: 'too many failed authentication attempts; try again later' }), {
          status: 429,
          headers: { 'content-type': 'application/problem+json', 'retry-after': '17' },
        }),
    });
    await expect(throttled.get('0c6a1d4e-53b5-4c0e-9d6e-0a9a3d4b5c6d')).rejects.toMatchObject({ status: 429, retryAfter: 17, detail: 'too many failed authentication attempts; try again later' });
  });
});

// These need the store's side of v1 (lambdas/core/manage.ts): until it is merged, its placeholder
// answers every one of them 500 ("not merged yet").
describe('the TypeScript client, on the job operations of the store', () => {
  it('get: a submitted job, polled until it completes', async () => {
    const { job_id } = await waas.submit({ url: `${target.url}/get`, body: 'plain' });
    const record = await waitFor(
      async () => {
        const job = await waas.get(job_id);
        return job.status === 'completed' ? job : undefined;
      },
      20_000,
      `job ${job_id} to complete`,
    );
    expect(record).toMatchObject({ jobId: job_id, clientId: demo.clientId, service: `${target.url}/get`, methodtype: 'POST', attempts: 1, output: { statusCode: 200 } });
    await expect(waas.get('0c6a1d4e-53b5-4c0e-9d6e-0a9a3d4b5c6d')).rejects.toMatchObject({ status: 404 });
  });

  it('list: 2 a page over 5 jobs lists each job once, newest first, and one page on its own', async () => {
    const own = freshClient();
    const submitted: string[] = [];
    for (let i = 0; i < 5; i++) submitted.push((await own.submit({ url: `${target.url}/list/${i}` })).job_id);
    const listed: JobRecord[] = [];
    for await (const job of own.list({ limit: 2 })) listed.push(job);
    expect(listed.map((job) => job.jobId).sort()).toEqual([...submitted].sort());
    expect(new Set(listed.map((job) => job.jobId)).size).toBe(5);
    const created = listed.map((job) => job.created);
    expect(created).toEqual([...created].sort().reverse());
    const first = await own.listPage({ limit: 2 });
    expect(first.jobs).toHaveLength(2);
    expect(first.next_cursor).toEqual(expect.any(String));
    const second = await own.listPage({ limit: 2, cursor: first.next_cursor ?? '' });
    expect(second.jobs.map((job) => job.jobId)).not.toContain(first.jobs[0]?.jobId);
  });

  it('attempts: every attempt of a completed job, with its answer', async () => {
    const { job_id } = await waas.submit({ url: `${target.url}/attempts` });
    await waitFor(async () => ((await waas.get(job_id)).status === 'completed' ? true : undefined), 20_000, `job ${job_id} to complete`);
    const attempts = await waas.attempts(job_id);
    expect(attempts).toEqual([expect.objectContaining({ attempt: 1, statusCode: 200 })]);
  });

  it('request: what the job sends, its headers and body as submitted', async () => {
    const { job_id } = await waas.submit({ url: `${target.url}/request`, method: 'PATCH', headers: { 'X-Trace': '7' }, body: { a: 1 } });
    expect(await waas.request(job_id)).toEqual({ url: `${target.url}/request`, method: 'PATCH', headers: { 'X-Trace': '7', 'Content-Type': 'application/json', 'Idempotency-Key': job_id }, body: '{"a":1}' });
  });

  it('cancel: a job waiting on a retry is cancelled; a final one is a 409 WaasError', async () => {
    const slow = await startTarget((_, response) => {
      response.writeHead(503, { 'retry-after': '600' });
      response.end('later');
    });
    try {
      const { job_id } = await waas.submit({ url: `${slow.url}/retry`, max_attempts: 5 });
      await waitFor(async () => ((await waas.get(job_id)).status === 'running' ? true : undefined), 20_000, `job ${job_id} to wait on its retry`);
      const cancelled = await waas.cancel(job_id);
      expect(cancelled).toMatchObject({ jobId: job_id, status: 'cancelled' });
      await expect(waas.cancel(job_id)).rejects.toMatchObject({ status: 409 });
    } finally {
      await slow.close();
    }
  });

  it('replay: a new job with the same request, the old one untouched', async () => {
    const { job_id } = await waas.submit({ url: `${target.url}/replay`, method: 'PUT' });
    await waitFor(async () => ((await waas.get(job_id)).status === 'completed' ? true : undefined), 20_000, `job ${job_id} to complete`);
    const replayed = await waas.replay(job_id);
    expect(replayed).toMatchObject({ status: 'accepted', replay_of: job_id });
    expect(replayed.job_id).not.toBe(job_id);
    const again = await waitFor(async () => {
      const job = await waas.get(replayed.job_id);
      return job.status === 'completed' ? job : undefined;
    }, 20_000, `replay ${replayed.job_id} to complete`);
    expect(again).toMatchObject({ service: `${target.url}/replay`, methodtype: 'PUT' });
    expect((await waas.get(job_id)).status).toBe('completed');
  });

  it('schedules: made, listed, read and deleted; what EventBridge Scheduler cannot run is a 400 naming the rule', async () => {
    const own = freshClient();
    const made = await own.createSchedule({ cron: '0 9 * * 1-5', timezone: 'Europe/Paris', job: { url: `${target.url}/daily` } });
    expect(Date.parse(made.next_run)).toBeGreaterThan(Date.now());
    expect((await own.listSchedules()).map((schedule) => schedule.schedule_id)).toEqual([made.schedule_id]);
    expect(await own.getSchedule(made.schedule_id)).toMatchObject({ cron: '0 9 * * 1-5', schedule_expression: 'cron(0 9 ? * 2,3,4,5,6 *)', job: { url: `${target.url}/daily` } });
    const refused = await own.createSchedule({ cron: '0 9 1 * 1', job: { url: `${target.url}/daily` } }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(WaasError);
    expect((refused as WaasError).detail).toMatch(/cannot both be restricted/);
    await own.deleteSchedule(made.schedule_id);
    const gone = await own.getSchedule(made.schedule_id).catch((error: unknown) => error);
    expect((gone as WaasError).status).toBe(404);
  });
});
