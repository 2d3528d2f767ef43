/**
 * The v1 API's HTTP rules, through the api function over in-memory ports: credentials in
 * Authorization only (Basic or Bearer), unknown fields refused by name, 405 with Allow, RFC 9457
 * problems, and batch submission that refuses only the jobs at fault.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ApiDeps, ApiRequest } from '../../lambdas/core/api.ts';
import { problemContentType } from '../../lambdas/core/errors.ts';
import { batchStepBudgetMs } from '../../lambdas/core/submit.ts';
import { findV1Route } from '../../lambdas/core/v1.ts';
import { apiTimeoutMarginMs } from '../../lambdas/adapters/api-function.ts';
import { callApi, testContext } from '../support/api.ts';
import { ManualClock, MemoryClientStore, memoryApiDeps, testClient, type TestClient } from '../support/memory.ts';

const url = 'https://service.example.com/hook';
const uuidV4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function setup(overrides: Partial<ApiDeps> = {}) {
  const clock = new ManualClock(Date.parse('2026-12-02T03:04:05.006Z'));
  const clients = new MemoryClientStore();
  const alice = testClient('11111111111111');
  clients.clients.set(alice.client.clientId, alice.client);
  const { jobs, queue, deps } = memoryApiDeps(clock, clients, { sleep: async (ms) => clock.advance(ms), ...overrides });
  const basic = (as: TestClient = alice) => `Basic ${Buffer.from(`${as.client.clientId}:${as.token}`).toString('base64')}`;
  const call = (request: Partial<ApiRequest>, as: TestClient | null = alice) =>
    callApi(deps, { method: 'GET', path: '/', query: {}, body: undefined, ...request, headers: { ...(as ? { authorization: basic(as) } : {}), ...request.headers } });
  const submit = (job: Record<string, unknown>, headers: Record<string, string> = {}) => call({ method: 'POST', path: '/v1/jobs', body: JSON.stringify(job), headers });
  const batch = (body: unknown) => call({ method: 'POST', path: '/v1/jobs/batch', body: JSON.stringify(body) });
  return { clock, jobs, queue, deps, alice, call, submit, batch, basic };
}

describe('POST /v1/jobs', () => {
  it('accepts a job in v1 names and stores it as the seed would', async () => {
    const { submit, jobs, queue } = setup();
    const answer = await submit({ url, method: 'put', headers: { 'X-Trace': '7' }, body: { order: 1 }, callback: 'https://client.example.com/cb', max_attempts: 3 });
    expect(answer.statusCode).toBe(202);
    expect(answer.body).toEqual({ job_id: expect.stringMatching(uuidV4), created: '2026-12-02T03:04:05.006Z', status: 'accepted' });
    const jobId = String(answer.body['job_id']);
    const job = await jobs.get(jobId);
    expect(job).toMatchObject({ service: url, methodtype: 'PUT', callback: 'https://client.example.com/cb', maxAttempts: 3, status: 'accepted' });
    expect(jobs.requests.get(jobId)).toMatchObject({ url, method: 'PUT', body: '{"order":1}', headers: { 'X-Trace': '7', 'Content-Type': 'application/json', 'Idempotency-Key': jobId } });
    expect(queue.sent).toEqual([expect.objectContaining({ kind: 'job', jobId })]);
  });

  it('lists the job in a listing entry of its own before its message is sent; an entry that cannot be written refuses the job, 503, nothing kept', async () => {
    const { submit, jobs, queue } = setup();
    const enlist = jobs.enlist.bind(jobs);
    let sentFirst: number | undefined;
    jobs.enlist = async (...args) => {
      sentFirst = queue.sent.length;
      return enlist(...args);
    };
    const answer = await submit({ url });
    expect(sentFirst).toBe(0);
    expect([...(jobs.listings.get('11111111111111')?.values() ?? [])]).toEqual([{ created: answer.body['created'], first: answer.body['job_id'], jobs: [answer.body['job_id']] }]);
    jobs.enlist = async () => {
      throw new Error('throttled');
    };
    expect(await submit({ url }, { 'Idempotency-Key': 'k1' })).toMatchObject({ statusCode: 503 });
    expect(queue.sent).toHaveLength(1);
    expect(jobs.jobs.size).toBe(1);
    expect(jobs.idempotency.size).toBe(0);
  });

  it('sends body_base64 as the bytes it encodes, and refuses it beside body', async () => {
    const { submit, jobs } = setup();
    const bytes = Buffer.from([0, 255, 1, 254]).toString('base64');
    const answer = await submit({ url, body_base64: bytes });
    expect(answer.statusCode).toBe(202);
    expect(jobs.requests.get(String(answer.body['job_id']))).toMatchObject({ body: bytes, bodyEncoding: 'base64' });
    const both = await submit({ url, body: 'text', body_base64: bytes });
    expect(both.statusCode).toBe(400);
    expect(both.body['detail']).toMatch(/^body_base64: not with body/);
    const broken = await submit({ url, body_base64: 'not base64!' });
    expect(broken.body['detail']).toMatch(/^body_base64 must be base64/);
  });

  it('refuses a misspelt field by name, with the field it was likely meant to be, and queues nothing', async () => {
    const { submit, queue } = setup();
    const answer = await submit({ url, calback: 'https://client.example.com/cb' });
    expect(answer.statusCode).toBe(400);
    expect(answer.headers?.['content-type']).toBe(problemContentType);
    expect(answer.body).toEqual({
      type: 'urn:waas:problem:invalid-request',
      title: 'The request is not valid',
      status: 400,
      detail: 'unknown field "calback" (did you mean "callback"?): v1 takes only the fields it documents',
    });
    expect(queue.sent).toEqual([]);
  });

  it('names each field at fault with its rule, in v1 names', async () => {
    const { submit } = setup();
    expect((await submit({})).body['detail']).toBe('url is required');
    expect((await submit({ url: 'ftp://x.example/' })).body['detail']).toMatch(/^url must be an absolute http\(s\) URL/);
    expect((await submit({ url, method: 'FETCH' })).body['detail']).toBe('method must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS');
    expect((await submit({ url, timeout_ms: 5 })).body['detail']).toBe('timeout_ms must be an integer from 100 to 60000');
    // The seed's names are not v1's.
    expect((await submit({ service: url })).body['detail']).toMatch(/^unknown field "service"/);
  });

  it('answers a repeated Idempotency-Key with the first answer', async () => {
    const { submit, jobs } = setup();
    const first = await submit({ url }, { 'idempotency-key': 'order-7' });
    const again = await submit({ url }, { 'idempotency-key': 'order-7' });
    expect(again).toMatchObject({ statusCode: 202, body: first.body });
    expect(jobs.jobs.size).toBe(1);
  });
});

describe('v1 credentials', () => {
  it('takes Basic, Bearer id:token and Bearer id.token', async () => {
    const { call, alice, basic } = setup();
    const body = JSON.stringify({ url });
    for (const authorization of [basic(), `Bearer ${alice.client.clientId}:${alice.token}`, `bearer ${alice.client.clientId}.${alice.token}`]) {
      expect((await call({ method: 'POST', path: '/v1/jobs', body, headers: { authorization } }, null)).statusCode).toBe(202);
    }
  });

  it('refuses missing, wrong or body-borne credentials with a 401 problem and a challenge', async () => {
    const { call, alice } = setup();
    for (const [headers, body] of [
      [{}, JSON.stringify({ url })],
      [{ authorization: `Bearer ${alice.client.clientId}:wrong` }, JSON.stringify({ url })],
      [{ authorization: `Bearer ${alice.token}` }, JSON.stringify({ url })],
      [{}, JSON.stringify({ url, client_id: alice.client.clientId, verify_token: alice.token })],
    ] as const) {
      const answer = await call({ method: 'POST', path: '/v1/jobs', body, headers }, null);
      expect(answer.statusCode).toBe(401);
      expect(answer.headers).toMatchObject({ 'content-type': problemContentType, 'www-authenticate': 'Bearer realm="waas"' });
      expect(answer.body).toMatchObject({ type: 'urn:waas:problem:bad-credentials', status: 401 });
    }
  });
});

describe('v1 routes', () => {
  it('answers a known path asked with another method 405, with Allow', async () => {
    const { call } = setup();
    const jobPath = '/v1/jobs/0b7f6a9e-3c1d-4e2f-8a9b-1c2d3e4f5a6b';
    for (const [method, path, allow] of [
      ['PUT', '/v1/jobs', 'POST, GET'],
      ['PATCH', jobPath, 'GET, DELETE'],
      ['GET', '/v1/jobs/batch', 'POST'],
      ['DELETE', `${jobPath}/attempts`, 'GET'],
    ] as const) {
      const answer = await call({ method, path });
      expect(answer.statusCode, `${method} ${path}`).toBe(405);
      expect(answer.headers?.['allow']).toBe(allow);
      expect(answer.body).toMatchObject({ type: 'urn:waas:problem:method-not-allowed', status: 405 });
    }
  });

  it('answers an unknown v1 path with a 404 problem', async () => {
    const answer = await setup().call({ method: 'GET', path: '/v1/nothing' });
    expect(answer).toMatchObject({ statusCode: 404, body: { type: 'urn:waas:problem:no-such-route', status: 404 } });
  });

  it('takes the most specific path: /v1/jobs/batch is not the job "batch"', () => {
    expect(findV1Route('POST', '/v1/jobs/batch').route.path).toBe('/v1/jobs/batch');
    expect(findV1Route('GET', '/v1/jobs/abc').params).toEqual({ job_id: 'abc' });
  });

  it('refuses query parameters a route does not take, and a bad list query, by name', async () => {
    const { call } = setup();
    const stray = await call({ method: 'POST', path: '/v1/jobs', query: { callback: 'x' }, body: JSON.stringify({ url }) });
    expect(stray).toMatchObject({ statusCode: 400, body: { detail: 'unknown query parameter "callback": POST /v1/jobs takes none' } });
    for (const [query, detail] of [
      [{ limit: '0' }, 'limit must be an integer from 1 to 100'],
      [{ limit: '101' }, 'limit must be an integer from 1 to 100'],
      [{ limit: 'ten' }, 'limit must be an integer from 1 to 100'],
      [{ status: 'done' }, 'status must be one of accepted, started, running, completed, failed'],
      [{ stauts: 'failed' }, 'unknown field "stauts" (did you mean "status"?): v1 takes only the fields it documents'],
    ] as const) {
      const answer = await call({ method: 'GET', path: '/v1/jobs', query });
      expect(answer.statusCode).toBe(400);
      expect(String(answer.body['detail'])).toMatch(new RegExp(`^${detail.replace(/[().?]/g, '\\$&').replace('completed, failed', 'completed, failed.*')}`));
    }
  });

  it('answers a malformed job id 404, as GET /status does', async () => {
    const answer = await setup().call({ method: 'GET', path: '/v1/jobs/not-a-uuid' });
    expect(answer).toMatchObject({ statusCode: 404, body: { type: 'urn:waas:problem:job-not-found' } });
  });
});

describe('POST /v1/jobs/batch', () => {
  it('accepts each good job and refuses each bad one on its own, in the request order', async () => {
    const { batch, jobs, queue } = setup();
    const answer = await batch({ jobs: [{ url }, { url, calback: url }, { url: 'nope' }, { url, method: 'GET' }] });
    expect(answer.statusCode).toBe(200);
    const results = answer.body['results'] as Array<Record<string, unknown>>;
    expect(results).toHaveLength(4);
    expect(results[0]).toEqual({ job_id: expect.stringMatching(uuidV4), created: expect.any(String), status: 'accepted' });
    expect(results[1]).toEqual({ error: expect.objectContaining({ status: 400, detail: 'jobs[1]: unknown field "calback" (did you mean "callback"?): v1 takes only the fields it documents' }) });
    expect(results[2]).toEqual({ error: expect.objectContaining({ status: 400, detail: expect.stringMatching(/^jobs\[2\]: url must be an absolute/) }) });
    expect(results[3]).toMatchObject({ status: 'accepted' });
    expect(jobs.jobs.size).toBe(2);
    expect(queue.sent.map((message) => message.jobId).sort()).toEqual([results[0]?.['job_id'], results[3]?.['job_id']].sort());
  });

  it('lists the batch\'s new jobs in one listing entry, of one instant, in the request\'s order, written before any of their messages', async () => {
    const { batch, jobs, queue, call } = setup();
    const order: string[] = [];
    const enlist = jobs.enlist.bind(jobs);
    jobs.enlist = async (...args) => {
      order.push(`enlist ${args[2].length} (${queue.sent.length} sent)`);
      return enlist(...args);
    };
    const answer = await batch({ jobs: [{ url }, { url: 'nope' }, { url, method: 'GET' }, { url, delay_s: 60 }] });
    const results = answer.body['results'] as Array<Record<string, unknown>>;
    const accepted = results.filter((result) => result['status'] === 'accepted');
    expect(order).toEqual(['enlist 3 (0 sent)']);
    expect(new Set(accepted.map((result) => result['created'])).size).toBe(1);
    const entries = [...(jobs.listings.get('11111111111111')?.values() ?? [])];
    expect(entries).toEqual([{ created: accepted[0]?.['created'], first: accepted[0]?.['job_id'], jobs: accepted.map((result) => result['job_id']) }]);
    const listed = await call({ method: 'GET', path: '/v1/jobs', query: { limit: '10' } });
    expect((listed.body['jobs'] as Array<Record<string, unknown>>).map((job) => job['jobId'])).toEqual(accepted.map((result) => result['job_id']));
  });

  it('refuses every new job of the batch, 503, when its listing entry cannot be written: nothing is sent or kept, and its keys are free again', async () => {
    const { batch, jobs, queue } = setup();
    jobs.enlist = async () => {
      throw new Error('throttled');
    };
    const answer = await batch({ jobs: [{ url, idempotency_key: 'k1' }, { url }, { url: 'nope' }] });
    const results = answer.body['results'] as Array<Record<string, unknown>>;
    expect(results.map((result) => (result['error'] as { status: number }).status)).toEqual([503, 503, 400]);
    expect(queue.sent).toEqual([]);
    expect(jobs.jobs.size).toBe(0);
    expect(jobs.idempotency.size).toBe(0);
  });

  it('refuses only the jobs whose message the queue refused, and keeps none of them', async () => {
    const ids = ['a0000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000002', 'a0000000-0000-4000-8000-000000000003'];
    const pool = [...ids];
    const { batch, jobs, queue } = setup({ newId: () => pool.shift() ?? 'exhausted' });
    queue.refusing.add(ids[1]!);
    const answer = await batch({ jobs: [{ url }, { url }, { url }] });
    const results = answer.body['results'] as Array<Record<string, unknown>>;
    expect(results.map((result) => result['job_id'] ?? (result['error'] as { status: number }).status)).toEqual([ids[0], 503, ids[2]]);
    expect([...jobs.jobs.keys()].sort()).toEqual([ids[0], ids[2]]);
  });

  it('takes back a job whose write failed, and refuses it alone', async () => {
    const { batch, jobs, queue } = setup();
    let writes = 0;
    const create = jobs.create.bind(jobs);
    jobs.create = async (job, request) => {
      if (writes++ === 1) throw new Error('throttled');
      return create(job, request);
    };
    const answer = await batch({ jobs: [{ url }, { url }, { url }] });
    const results = answer.body['results'] as Array<Record<string, unknown>>;
    expect(results.filter((result) => 'error' in result)).toHaveLength(1);
    expect(jobs.jobs.size).toBe(2);
    // Its message went out before its write failed: it finds no job and is dropped.
    expect(queue.sent).toHaveLength(3);
  });

  it('answers a key given twice in one batch, or again later, with the first job', async () => {
    const { batch, jobs } = setup();
    const first = await batch({ jobs: [{ url, idempotency_key: 'k1' }, { url, idempotency_key: 'k1' }, { url }] });
    const results = first.body['results'] as Array<Record<string, unknown>>;
    expect(results[1]).toEqual(results[0]);
    const again = await batch({ jobs: [{ url, idempotency_key: 'k1' }] });
    expect((again.body['results'] as unknown[])[0]).toEqual(results[0]);
    expect(jobs.jobs.size).toBe(2);
  });

  it('takes a batch larger than one job may be, and refuses only a job over that size, 413', async () => {
    const { batch } = setup();
    const big = 'x'.repeat(200 * 1024);
    const answer = await batch({ jobs: [{ url, body: big }, { url, body: big }, { url, body: `${big}${big}` }] });
    expect(answer.statusCode).toBe(200);
    const results = answer.body['results'] as Array<Record<string, unknown>>;
    expect(results.map((result) => result['status'] ?? (result['error'] as { status: number }).status)).toEqual(['accepted', 'accepted', 413]);
    expect((results[2]?.['error'] as { detail: string }).detail).toBe('jobs[2]: a job must be at most 262144 bytes of JSON');
  });

  it('answers in time when its writes are slow: the jobs it could not store in time are refused, none of them kept', async () => {
    const { deps, jobs, clock, basic } = setup();
    // Each write takes a second of the function's ten (the api answers a second early).
    const create = jobs.create.bind(jobs);
    jobs.create = async (job, request) => {
      clock.advance(1_000);
      return create(job, request);
    };
    const body = JSON.stringify({ jobs: Array.from({ length: 30 }, (_, i) => ({ url: `${url}/${i}` })) });
    const answer = await callApi(deps, { method: 'POST', path: '/v1/jobs/batch', query: {}, headers: { authorization: basic() }, body }, testContext(10_000));
    expect(answer.statusCode).toBe(200);
    const results = answer.body['results'] as Array<Record<string, unknown>>;
    const accepted = results.filter((result) => result['status'] === 'accepted');
    const late = results.filter((result) => (result['error'] as { detail?: string } | undefined)?.detail?.startsWith('the batch ran out of time'));
    expect(accepted.length).toBeGreaterThan(0);
    expect(late.length).toBeGreaterThan(0);
    expect(accepted.length + late.length).toBe(30);
    expect([...jobs.jobs.keys()].sort()).toEqual(accepted.map((result) => result['job_id']).sort());
    // The first jobs of the request are the ones stored.
    expect(results.slice(0, accepted.length).every((result) => result['status'] === 'accepted')).toBe(true);
  });

  it('refuses the whole request when it is not a batch of 1 to 100 jobs', async () => {
    const { batch } = setup();
    for (const [body, detail] of [
      [{ jobs: [] }, 'jobs must hold 1 to 100 jobs'],
      [{ jobs: Array.from({ length: 101 }, () => ({ url })) }, 'jobs must hold 1 to 100 jobs'],
      [{ jobs: { url } }, 'jobs must be an array of jobs'],
      [{ job: [{ url }] }, 'unknown field "job" (did you mean "jobs"?): v1 takes only the fields it documents'],
    ] as const) {
      const answer = await batch(body);
      expect(answer).toMatchObject({ statusCode: 400, body: { detail } });
    }
  });
});

describe('v1 cut short', () => {
  it('answers a request that would outlive the function with a 503 problem and Retry-After', async () => {
    const { deps, basic, queue } = setup();
    queue.send = () => new Promise<void>(() => undefined);
    const answer = await callApi(
      deps,
      { method: 'POST', path: '/v1/jobs', query: {}, headers: { authorization: basic() }, body: JSON.stringify({ url }) },
      testContext(apiTimeoutMarginMs + 50),
    );
    expect(answer.statusCode).toBe(503);
    expect(answer.headers).toMatchObject({ 'content-type': problemContentType, 'retry-after': '1' });
    expect(answer.body).toMatchObject({ type: 'urn:waas:problem:unavailable', status: 503 });
  });

  it('says of a batch cut short that some of its jobs may have been stored, and how to send it again safely', async () => {
    const { deps, basic, jobs } = setup();
    jobs.create = () => new Promise<void>(() => undefined);
    const body = JSON.stringify({ jobs: [{ url }] });
    // Time enough to begin the write (batchStepBudgetMs), which then hangs past the deadline.
    const answer = await callApi(deps, { method: 'POST', path: '/v1/jobs/batch', query: {}, headers: { authorization: basic() }, body }, testContext(apiTimeoutMarginMs + batchStepBudgetMs + 50));
    expect(answer).toMatchObject({ statusCode: 503, body: { detail: expect.stringMatching(/may have been stored: send the batch again with an idempotency_key/) } });
  });
});

describe('the local front routes v1 as API Gateway does', () => {
  it('sends every path under /v1/ to the api function by the greedy route, and nothing else', async () => {
    const { gatewayRoutes } = await import('../../local/front.ts');
    const route = gatewayRoutes();
    expect(route('POST', '/webhook')).toBe('POST /webhook');
    expect(route('DELETE', '/v1/jobs/abc')).toBe('ANY /v1/{proxy+}');
    expect(route('GET', '/v1/')).toBeUndefined();
    expect(route('GET', '/v1')).toBeUndefined();
    expect(route('PUT', '/webhook')).toBeUndefined();
    expect(route('GET', '/v2/jobs')).toBeUndefined();
  });
});

describe('v1 under arbitrary input', () => {
  const known = ['url', 'method', 'headers', 'body', 'body_base64', 'callback', 'max_attempts', 'timeout_ms', 'callback_max_attempts'];
  const key = fc.oneof(fc.constantFrom(...known), fc.constantFrom('calback', 'service', 'data', '__proto__', 'constructor', 'client_id'), fc.string({ maxLength: 8 }));
  const value = fc.oneof(fc.constant(url), fc.jsonValue({ maxDepth: 2 }));
  const job = fc.dictionary(key, value, { maxKeys: 6 });

  it('never answers 5xx; every refusal is a problem; a job is accepted only with known fields, and an unknown one is named', async () => {
    await fc.assert(
      fc.asyncProperty(job, fc.boolean(), async (fields, batched) => {
        const { submit, batch, jobs } = setup();
        const answer = batched ? await batch({ jobs: [fields] }) : await submit(fields);
        expect(answer.statusCode).toBeLessThan(500);
        const outcome = batched ? ((answer.body['results'] as Array<Record<string, unknown>>)[0] ?? {}) : answer.body;
        const problem = (batched ? outcome['error'] : answer.statusCode >= 400 ? answer.body : undefined) as Record<string, unknown> | undefined;
        const unknown = Object.keys(fields).filter((name) => !known.includes(name));
        if (problem === undefined) {
          expect(unknown).toEqual([]);
          expect(jobs.jobs.size).toBe(1);
          return;
        }
        if (!batched) expect(answer.headers?.['content-type']).toBe(problemContentType);
        expect(problem).toEqual({ type: expect.stringMatching(/^urn:waas:problem:/), title: expect.any(String), status: expect.any(Number), detail: expect.any(String) });
        expect(jobs.jobs.size).toBe(0);
        for (const name of unknown) expect(String(problem['detail'])).toContain(JSON.stringify(name));
      }),
      { numRuns: 300 },
    );
  });
});
