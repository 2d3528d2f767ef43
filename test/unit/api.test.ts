import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { apiFunction } from '../../lambdas/adapters/api-function.ts';
import type { ApiDeps, ApiRequest } from '../../lambdas/core/api.ts';
import { callApi, gatewayEvent, testContext } from '../support/api.ts';
import { jobLimits, leaseMarginMs, submitWriteWindowMs } from '../../lib/definitions.ts';
import { deferred, ManualClock, MemoryClientStore, MemoryJobStore, MemoryWorkQueue, memoryApiDeps, testClient, type TestClient } from '../support/memory.ts';

const uuidV4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** Lets the event loop run until `condition` holds (a bounded number of turns). */
async function waitUntil(condition: () => boolean): Promise<void> {
  for (let turn = 0; turn < 100 && !condition(); turn++) await new Promise((resolve) => setImmediate(resolve));
  if (!condition()) throw new Error('the condition never held');
}

const isoInstant = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

function setup(overrides: Partial<ApiDeps> = {}) {
  const clock = new ManualClock(Date.parse('2025-03-04T05:06:07.089Z'));
  const clients = new MemoryClientStore();
  const alice = testClient('11111111111111');
  const bob = testClient('22222222222222');
  clients.clients.set(alice.client.clientId, alice.client);
  clients.clients.set(bob.client.clientId, bob.client);
  const { jobs, queue, deps } = memoryApiDeps(clock, clients, { sleep: async (ms) => clock.advance(ms), ...overrides });
  const call = (request: Partial<ApiRequest>) => callApi(deps, { method: 'GET', path: '/', query: {}, headers: {}, body: undefined, ...request });
  /** POST /webhook with `as`'s credentials in the body, as the seed's clients send them. */
  const post = (fields: Record<string, unknown>, as: TestClient = alice, headers: Record<string, string> = {}) =>
    call({ method: 'POST', path: '/webhook', headers, body: JSON.stringify({ client_id: as.client.clientId, verify_token: as.token, ...fields }) });
  const status = (jobId: unknown, as: TestClient = alice) =>
    call({ method: 'GET', path: '/status', body: JSON.stringify({ client_id: as.client.clientId, verify_token: as.token, job_id: jobId }) });
  return { clock, jobs, clients, queue, alice, bob, deps, call, post, status };
}

const service = 'https://service.example.com/hook';

describe('the seed\'s answers, word for word', () => {
  it.each([
    ['a body that is not JSON', 'service=https://example.com'],
    ['a JSON array', '[{"service":"https://example.com"}]'],
    ['a JSON string', '"https://example.com"'],
    ['JSON null', 'null'],
  ])('%s is a 422', async (_, body) => {
    const { call, alice } = setup();
    const basic = `Basic ${Buffer.from(`${alice.client.clientId}:${alice.token}`).toString('base64')}`;
    for (const request of [
      { method: 'POST', path: '/webhook', body },
      { method: 'GET', path: '/webhook', body, headers: { authorization: basic } },
      { method: 'GET', path: '/status', body, headers: { authorization: basic } },
    ]) {
      const answer = await call(request);
      expect(answer.statusCode).toBe(422);
      expect(JSON.stringify(answer.body)).toBe('{"message":"request type must be JSON","status":"failed"}');
    }
  });

  it('bad credentials are a 401', async () => {
    const { call, post, alice, bob, queue } = setup();
    for (const answer of [
      await post({ service }, { ...alice, token: bob.token }),
      await post({ service }, { ...alice, client: { ...alice.client, clientId: '99999999999999' } }),
      await call({ method: 'POST', path: '/webhook', body: JSON.stringify({ service }) }),
      await call({ method: 'GET', path: '/webhook' }),
    ]) {
      expect(answer.statusCode).toBe(401);
      expect(JSON.stringify(answer.body)).toBe('{"status":"bad credentials"}');
    }
    expect(queue.sent).toEqual([]);
  });

  it('GET /webhook with good credentials is 200 {"status":"success"}', async () => {
    const { call, alice } = setup();
    const answer = await call({ method: 'GET', path: '/webhook', body: JSON.stringify({ client_id: alice.client.clientId, verify_token: alice.token }) });
    expect(answer).toMatchObject({ statusCode: 200, body: { status: 'success' } });
    expect(JSON.stringify(answer.body)).toBe('{"status":"success"}');
  });

  it('GET /webhook takes Basic auth (curl -u)', async () => {
    const { call, alice } = setup();
    const authorization = `Basic ${Buffer.from(`${alice.client.clientId}:${alice.token}`).toString('base64')}`;
    expect(await call({ method: 'GET', path: '/webhook', headers: { authorization } })).toMatchObject({ statusCode: 200, body: { status: 'success' } });
  });

  it('GET /health is 200 {"status":"ok"} without credentials', async () => {
    const { call } = setup();
    const answer = await call({ method: 'GET', path: '/health' });
    expect(answer.statusCode).toBe(200);
    expect(JSON.stringify(answer.body)).toBe('{"status":"ok"}');
  });
});

describe('POST /webhook validation', () => {
  const long = `https://example.com/${'a'.repeat(jobLimits.urlChars)}`;
  it.each<[string, Record<string, unknown>, RegExp]>([
    ['a missing service', {}, /^service is required$/],
    ['a relative service URL', { service: '/hook' }, /^service must be an absolute http\(s\) URL/],
    ['an ftp: service URL', { service: 'ftp://example.com/file' }, /^service must be an absolute http\(s\) URL/],
    ['a service URL over 2048 characters', { service: long }, /^service must be at most 2048 characters$/],
    ['a service that is not a string', { service: 42 }, /^service must be a string/],
    ['a relative callback URL', { service, callback: 'callback' }, /^callback must be an absolute http\(s\) URL/],
    ['an empty methodtype', { service, methodtype: '' }, /^methodtype must be one of GET, POST/],
    ['methodtype FETCH', { service, methodtype: 'FETCH' }, /^methodtype must be one of GET, POST/],
    ['headers that are a string', { service, headers: 'Authorization: x' }, /^headers must be an object of string to string$/],
    ['headers that are an array', { service, headers: [['a', 'b']] }, /^headers must be an object of string to string$/],
    ['a header value that is a number', { service, headers: { 'X-Count': 1 } }, /^headers.*values must be strings$/],
    ['a header name with a space', { service, headers: { 'X Bad': 'v' } }, /headers.*"X Bad"/],
    ['a header value with CR LF', { service, headers: { 'X-Evil': 'a\r\nHost: evil.example' } }, /headers.*"X-Evil"/],
    ['a Host header', { service, headers: { Host: 'internal' } }, /headers.*"Host"/],
    ['a Content-Length header', { service, headers: { 'Content-Length': '5' } }, /headers.*"Content-Length"/],
    ['a Transfer-Encoding header', { service, headers: { 'transfer-encoding': 'chunked' } }, /headers.*"transfer-encoding"/],
    ['a Proxy-Authorization header', { service, headers: { 'Proxy-Authorization': 'Basic x' } }, /headers.*"Proxy-Authorization"/],
    ['a Connection header', { service, headers: { Connection: 'close' } }, /headers.*"Connection"/],
    ['max_attempts 0', { service, max_attempts: 0 }, /^max_attempts must be an integer from 1 to 20$/],
    ['max_attempts 21', { service, max_attempts: 21 }, /^max_attempts must be an integer from 1 to 20$/],
    ['max_attempts 2.5', { service, max_attempts: 2.5 }, /^max_attempts must be an integer from 1 to 20$/],
    ['max_attempts "3"', { service, max_attempts: '3' }, /^max_attempts must be an integer from 1 to 20$/],
    ['timeout_ms 99', { service, timeout_ms: 99 }, /^timeout_ms must be an integer from 100 to 60000$/],
    ['timeout_ms 60001', { service, timeout_ms: 60_001 }, /^timeout_ms must be an integer from 100 to 60000$/],
    ['callback_max_attempts 0', { service, callback: 'https://cb.example.com', callback_max_attempts: 0 }, /^callback_max_attempts must be an integer from 1 to 20$/],
  ])('%s is a 400 naming the field and what is wrong with it', async (_, fields, names) => {
    const { post, jobs, queue } = setup();
    const answer = await post(fields);
    expect(answer.statusCode).toBe(400);
    expect(answer.body).toEqual({ status: 'failed', message: expect.stringMatching(names) });
    expect(jobs.jobs.size).toBe(0);
    expect(queue.sent).toEqual([]);
  });

  it('accepts the limits themselves', async () => {
    const { post } = setup();
    const exact = `https://example.com/${'a'.repeat(jobLimits.urlChars - 'https://example.com/'.length)}`;
    expect(exact).toHaveLength(jobLimits.urlChars);
    const answer = await post({ service: exact, max_attempts: 20, timeout_ms: 100, callback: 'http://cb.example.com', callback_max_attempts: 1 });
    expect(answer.statusCode).toBe(202);
    expect((await post({ service, max_attempts: 1, timeout_ms: 60_000 })).statusCode).toBe(202);
  });

  it('a body over 256 KiB is a 413 and stores nothing', async () => {
    const { post, jobs } = setup();
    const answer = await post({ service, data: 'x'.repeat(256 * 1024) });
    expect(answer.statusCode).toBe(413);
    expect(answer.body).toEqual({ status: 'failed', message: expect.any(String) });
    expect(jobs.jobs.size).toBe(0);
  });

  it('a URL refused by the egress policy is a 400 naming the field, and nothing is stored or queued', async () => {
    const refused = (bad: string) => async (url: string) => (url.startsWith(bad) ? 'resolves to a private address' : undefined);
    for (const [field, fields] of [
      ['service', { service: 'http://10.0.0.1/' }],
      ['callback', { service, callback: 'http://10.0.0.1/cb' }],
    ] as const) {
      const { post, jobs, queue } = setup({ refuse: refused('http://10.0.0.1') });
      const answer = await post(fields);
      expect(answer.statusCode).toBe(400);
      expect(answer.body).toEqual({ status: 'failed', message: `${field}: resolves to a private address` });
      expect(jobs.jobs.size).toBe(0);
      expect(queue.sent).toEqual([]);
    }
  });
});

describe('POST /webhook acceptance', () => {
  it('answers 202 with created, job_id and status, and stores and queues the job', async () => {
    const { post, jobs, queue, clock, alice } = setup();
    const answer = await post({ service, callback: 'https://cb.example.com/done' });
    expect(answer.statusCode).toBe(202);
    expect(Object.keys(answer.body).sort()).toEqual(['created', 'job_id', 'status']);
    const { created, job_id: jobId, status } = answer.body as { created: string; job_id: string; status: string };
    expect(status).toBe('accepted');
    expect(created).toMatch(isoInstant);
    expect(Date.parse(created)).toBe(clock.now());
    expect(jobId).toMatch(uuidV4);

    const job = await jobs.get(jobId);
    expect(job).toMatchObject({
      jobId,
      clientId: alice.client.clientId,
      created,
      status: 'accepted',
      attempts: 0,
      service,
      methodtype: 'POST',
      callback: 'https://cb.example.com/done',
      maxAttempts: 5,
      timeoutMs: 10_000,
      callbackMaxAttempts: 5,
      output: null,
      notified: 'no',
    });
    expect(queue.sent).toEqual([{ kind: 'job', jobId, leaseMs: 10_000 + leaseMarginMs }]);
  });

  it('a job without a callback is stored with notified "n/a"', async () => {
    const { post, jobs } = setup();
    const { job_id: jobId } = (await post({ service })).body as { job_id: string };
    expect((await jobs.get(jobId))?.notified).toBe('n/a');
  });

  it('keeps max_attempts, timeout_ms and callback_max_attempts as given', async () => {
    const { post, jobs } = setup();
    const { job_id: jobId } = (await post({ service, callback: 'https://cb.example.com', max_attempts: 7, timeout_ms: 2500, callback_max_attempts: 3 })).body as { job_id: string };
    expect(await jobs.get(jobId)).toMatchObject({ maxAttempts: 7, timeoutMs: 2500, callbackMaxAttempts: 3 });
  });

  const header = (headers: Record<string, string>, name: string) =>
    Object.entries(headers).filter(([key]) => key.toLowerCase() === name.toLowerCase()).map(([, value]) => value);

  it('string data is sent verbatim, with no Content-Type added', async () => {
    const { post, jobs } = setup();
    const data = 'a=1&b=two\n{not json}';
    const { job_id: jobId } = (await post({ service, data })).body as { job_id: string };
    const request = await jobs.getRequest(jobId);
    expect(request?.body).toBe(data);
    expect(header(request?.headers ?? {}, 'content-type')).toEqual([]);
  });

  it.each([{ a: 1, nested: { b: [true, null] } }, [1, 'two'], 0, false])('data %j is sent as JSON with Content-Type application/json', async (data) => {
    const { post, jobs } = setup();
    const { job_id: jobId } = (await post({ service, data })).body as { job_id: string };
    const request = await jobs.getRequest(jobId);
    expect(request?.body).toBe(JSON.stringify(data));
    expect(header(request?.headers ?? {}, 'content-type')).toEqual(['application/json']);
  });

  it('the client\'s own Content-Type, in any case, is kept and not doubled', async () => {
    const { post, jobs } = setup();
    const { job_id: jobId } = (await post({ service, data: { a: 1 }, headers: { 'content-TYPE': 'application/vnd.api+json' } })).body as { job_id: string };
    const request = await jobs.getRequest(jobId);
    expect(header(request?.headers ?? {}, 'content-type')).toEqual(['application/vnd.api+json']);
  });

  it('absent or null data sends no body', async () => {
    const { post, jobs } = setup();
    for (const fields of [{ service }, { service, data: null }]) {
      const { job_id: jobId } = (await post(fields)).body as { job_id: string };
      expect((await jobs.getRequest(jobId))?.body).toBeNull();
    }
  });

  it('adds Idempotency-Key: <job_id> to the service request, unless the client set one', async () => {
    const { post, jobs } = setup();
    const { job_id: first } = (await post({ service, headers: { Authorization: 'Bearer s' } })).body as { job_id: string };
    const request = await jobs.getRequest(first);
    expect(request?.headers).toEqual({ Authorization: 'Bearer s', 'Idempotency-Key': first });

    const { job_id: second } = (await post({ service, headers: { 'idempotency-key': 'mine' } })).body as { job_id: string };
    expect((await jobs.getRequest(second))?.headers).toEqual({ 'idempotency-key': 'mine' });
  });

  it('takes methodtype in any case', async () => {
    const { post, jobs } = setup();
    const { job_id: jobId } = (await post({ service, methodtype: 'get' })).body as { job_id: string };
    expect((await jobs.get(jobId))?.methodtype).toBe('GET');
    expect((await jobs.getRequest(jobId))?.method).toBe('GET');
  });

  it('takes Basic auth on POST', async () => {
    const { call, alice } = setup();
    const authorization = `Basic ${Buffer.from(`${alice.client.clientId}:${alice.token}`).toString('base64')}`;
    const answer = await call({ method: 'POST', path: '/webhook', headers: { authorization }, body: JSON.stringify({ service }) });
    expect(answer.statusCode).toBe(202);
  });

  /** Breaks one step of a submit; the function returned mends it. */
  type Outage = (world: ReturnType<typeof setup>) => () => void;
  const queueDown: Outage = ({ queue }) => {
    queue.failure = new Error('SQS is down');
    return () => (queue.failure = undefined);
  };
  const storeDown: Outage = ({ jobs }) => {
    const create = jobs.create.bind(jobs);
    jobs.create = async () => {
      throw new Error('DynamoDB is down');
    };
    return () => (jobs.create = create);
  };

  // The message goes first: when the store fails, it is on its way for a job never kept (it finds none).
  it.each([
    ['the job cannot be queued', queueDown, 0],
    ['the store fails after the message was sent', storeDown, 1],
  ] as const)('when %s the answer is 503, nothing is kept, and the key can be used again', async (_, outage, messagesSent) => {
    const world = setup();
    const { post, jobs, queue } = world;
    const mend = outage(world);
    const answer = await post({ service }, undefined, { 'idempotency-key': 'k-503' });
    expect(answer.statusCode).toBe(503);
    expect(answer.body).toMatchObject({ status: 'failed' });
    expect(queue.sent).toHaveLength(messagesSent);
    expect(jobs.jobs.size).toBe(0);
    expect(jobs.requests.size).toBe(0);
    expect(jobs.idempotency.size).toBe(0);

    // The key was not used up: the client's retry creates the job.
    mend();
    const retry = await post({ service }, undefined, { 'idempotency-key': 'k-503' });
    expect(retry.statusCode).toBe(202);
    expect(jobs.jobs.size).toBe(1);
  });
});

/** Starts a submit with `key` that has claimed it and waits on its queue until `released`. */
async function firstHeldAtItsQueue(post: ReturnType<typeof setup>['post'], jobs: MemoryJobStore, queue: MemoryWorkQueue, released: Promise<void>, key: string) {
  const send = queue.send.bind(queue);
  queue.send = async (message) => {
    await released;
    return send(message);
  };
  const first = post({ service }, undefined, { 'idempotency-key': key });
  await waitUntil(() => jobs.idempotency.size === 1);
  // Wrapped: an async function returning the promise itself would wait for it.
  return { first };
}

describe('Idempotency-Key on POST /webhook', () => {
  it('a repeat from the same client returns the first answer and creates nothing', async () => {
    const { post, jobs, queue, clock } = setup();
    const first = await post({ service }, undefined, { 'idempotency-key': 'order-42' });
    clock.advance(60_000);
    const repeat = await post({ service, data: 'different' }, undefined, { 'idempotency-key': 'order-42' });
    expect(repeat).toEqual(first);
    expect(jobs.jobs.size).toBe(1);
    expect(jobs.requests.size).toBe(1);
    expect(queue.sent).toHaveLength(1);
  });

  it('another client with the same key gets its own job', async () => {
    const { post, jobs, queue, bob } = setup();
    const first = await post({ service }, undefined, { 'idempotency-key': 'order-42' });
    const other = await post({ service }, bob, { 'idempotency-key': 'order-42' });
    expect(other.statusCode).toBe(202);
    expect(other.body['job_id']).not.toBe(first.body['job_id']);
    expect(jobs.jobs.size).toBe(2);
    expect(queue.sent).toHaveLength(2);
  });

  // A key leads to a job that exists, or to nothing: never to a 202 for work that will not run.
  it('a claim whose write landed twice (a retried call whose first answer was lost) is still ours: the job is stored and queued', async () => {
    const world = setup();
    const { post, jobs, queue } = world;
    const claim = jobs.claimIdempotent.bind(jobs);
    // As the SDK's retry of a conditional put that had landed: the write arrives twice.
    jobs.claimIdempotent = async (...args) => (await claim(...args)) ?? claim(...args);
    const answer = await post({ service }, undefined, { 'idempotency-key': 'order-7' });
    expect(answer.statusCode).toBe(202);
    const jobId = String(answer.body['job_id']);
    expect(await jobs.get(jobId)).toBeDefined();
    expect(queue.sent.map((message) => message.jobId)).toEqual([jobId]);
    expect([...jobs.idempotency.values()]).toMatchObject([{ jobId, state: 'done' }]);
  });

  it('a repeat while the first submit with its key is still running is a 409 with Retry-After, and creates nothing', async () => {
    const { post, jobs, queue } = setup();
    const held = deferred();
    const { first } = await firstHeldAtItsQueue(post, jobs, queue, held.promise, 'order-8');
    const repeat = await post({ service }, undefined, { 'idempotency-key': 'order-8' });
    expect(repeat.statusCode).toBe(409);
    expect(repeat.headers?.['retry-after']).toBe('1');
    expect(repeat.body).toMatchObject({ status: 'failed', message: expect.stringMatching(/^Idempotency-Key: .*in progress/) });
    held.resolve();
    const answered = await first;
    expect(answered.statusCode).toBe(202);
    // Now the key leads to the first job.
    expect(await post({ service }, undefined, { 'idempotency-key': 'order-8' })).toEqual(answered);
    expect(jobs.jobs.size).toBe(1);
  });

  it('a repeat that arrives while the first submit runs gets the first 202 when that submit ends a moment later', async () => {
    const held = deferred();
    // The repeat's wait lets the first go on: its turns of the event loop pass meanwhile.
    const { post, jobs, queue } = setup({ sleep: async () => {
      held.resolve();
      await new Promise((resolve) => setImmediate(resolve));
    } });
    const { first } = await firstHeldAtItsQueue(post, jobs, queue, held.promise, 'order-12');
    // The repeat looks, waits (and the first goes on meanwhile), and looks again.
    const repeat = await post({ service }, undefined, { 'idempotency-key': 'order-12' });
    expect(repeat).toEqual(await first);
    expect(repeat.statusCode).toBe(202);
    expect(jobs.jobs.size).toBe(1);
    expect(queue.sent).toHaveLength(1);
  });

  it('a repeat whose first submit failed while the repeat waited gets a job of its own, not the first 202', async () => {
    const world = setup();
    const { post, jobs, queue } = world;
    const held = deferred();
    queue.send = async () => {
      await held.promise;
      throw new Error('queue unavailable');
    };
    const first = post({ service }, undefined, { 'idempotency-key': 'order-9' });
    await waitUntil(() => jobs.idempotency.size === 1);
    expect((await post({ service }, undefined, { 'idempotency-key': 'order-9' })).statusCode).toBe(409);
    held.resolve();
    expect((await first).statusCode).toBe(503);
    queue.send = MemoryWorkQueue.prototype.send.bind(queue);
    const retry = await post({ service }, undefined, { 'idempotency-key': 'order-9' });
    expect(retry.statusCode).toBe(202);
    expect(await jobs.get(String(retry.body['job_id']))).toBeDefined();
  });

  it('a key left pending by a submit cut off before it stored its job is claimed anew once that submit cannot be running', async () => {
    const { post, jobs, queue, clock, alice } = setup();
    // What a function cut off by its timeout between claiming the key and storing the job leaves.
    await jobs.claimIdempotent(alice.client.clientId, 'order-10', { jobId: randomUUID(), answer: '{"job_id":"never-stored"}', state: 'pending', claimUntil: clock.now() + submitWriteWindowMs, expiresAt: Math.floor(clock.now() / 1000) + 86_400 }, clock.now());
    expect((await post({ service }, undefined, { 'idempotency-key': 'order-10' })).statusCode).toBe(409);
    clock.advance(submitWriteWindowMs + 1);
    const answer = await post({ service }, undefined, { 'idempotency-key': 'order-10' });
    expect(answer.statusCode).toBe(202);
    expect(answer.body['job_id']).not.toBe('never-stored');
    expect(await jobs.get(String(answer.body['job_id']))).toBeDefined();
    expect(queue.sent).toHaveLength(1);
  });

  it('a key left pending by a submit that stored its job (its last write was lost) leads to that job, and makes sure it is queued', async () => {
    const { post, jobs, queue, clock } = setup();
    jobs.settleIdempotent = async () => {
      throw new Error('store unavailable');
    };
    const first = await post({ service }, undefined, { 'idempotency-key': 'order-11' });
    expect(first.statusCode).toBe(202);
    clock.advance(submitWriteWindowMs + 1);
    jobs.settleIdempotent = MemoryJobStore.prototype.settleIdempotent.bind(jobs);
    expect(await post({ service }, undefined, { 'idempotency-key': 'order-11' })).toEqual(first);
    expect(jobs.jobs.size).toBe(1);
    // Whether the first submit's message went out is not known: the job gets one more.
    const jobId = String(first.body['job_id']);
    expect(queue.sent.map((message) => message.jobId)).toEqual([jobId, jobId]);
    expect([...jobs.idempotency.values()]).toMatchObject([{ state: 'done' }]);
  });

  it('an unreadable key is a 400', async () => {
    const { post, jobs } = setup();
    const answer = await post({ service }, undefined, { 'idempotency-key': 'x'.repeat(256) });
    expect(answer).toMatchObject({ statusCode: 400, body: { status: 'failed', message: expect.stringMatching(/Idempotency-Key/) } });
    expect(jobs.jobs.size).toBe(0);
  });
});

describe('GET /status', () => {
  it('shows the client its own job, by body or by query', async () => {
    const { post, status, call, alice } = setup();
    const { job_id: jobId } = (await post({ service })).body as { job_id: string };
    const answer = await status(jobId);
    expect(answer.statusCode).toBe(200);
    expect(answer.body).toMatchObject({ jobId, clientId: alice.client.clientId, service, methodtype: 'POST', status: 'accepted', attempts: 0, output: null, notified: 'n/a', notifyoutput: null });
    for (const field of ['created', 'lastUpdate']) expect(answer.body[field]).toMatch(isoInstant);

    const authorization = `Basic ${Buffer.from(`${alice.client.clientId}:${alice.token}`).toString('base64')}`;
    const byQuery = await call({ method: 'GET', path: '/status', query: { job_id: jobId.toUpperCase() }, headers: { authorization } });
    expect(byQuery).toEqual(answer);
  });

  it.each([
    ['an unknown id', () => randomUUID()],
    ['a malformed id', () => 'not-a-uuid'],
    ['a number', () => 42],
    ['no id', () => undefined],
  ])('%s is a 404', async (_, id) => {
    const { status } = setup();
    const answer = await status(id());
    expect(answer.statusCode).toBe(404);
    expect(JSON.stringify(answer.body)).toBe('{"status":"No job with that ID exists"}');
  });

  it('another client\'s job is a 404, as if it did not exist', async () => {
    const { post, status, bob } = setup();
    const { job_id: jobId } = (await post({ service })).body as { job_id: string };
    const answer = await status(jobId, bob);
    expect(answer.statusCode).toBe(404);
    expect(JSON.stringify(answer.body)).toBe('{"status":"No job with that ID exists"}');
  });
});

describe('input that must not pass', () => {
  const credentialsRule = 'must not hold credentials (user:password@); send them in headers (Authorization)';

  it.each([
    'http://user:s3cret-pw@service.example.com/hook',
    'http://:s3cret-pw@service.example.com/hook',
    'http://%75ser:%73%33cret-pw@service.example.com/hook',
    'http://user@service.example.com/hook',
    'http://a@b@service.example.com/hook',
  ])('credentials in a service or callback URL (%s) are a 400 naming the field, and nothing of them is kept', async (url) => {
    for (const fields of [{ service: url }, { service, callback: url }]) {
      const field = 'callback' in fields ? 'callback' : 'service';
      const { post, jobs, queue } = setup();
      const answer = await post(fields);
      expect(answer).toEqual({ statusCode: 400, headers: expect.anything(), body: { status: 'failed', message: `${field}: ${credentialsRule}` } });
      expect(JSON.stringify(answer)).not.toContain('s3cret');
      expect(jobs.jobs.size).toBe(0);
      expect(queue.sent).toEqual([]);
    }
  });

  it.each(['0', '00', '000'])('port %s in a service or callback URL is a 400 naming the field', async (port) => {
    for (const [field, fields] of [
      ['service', { service: `https://service.example.com:${port}/hook` }],
      ['callback', { service, callback: `https://cb.example.com:${port}/done` }],
    ] as const) {
      const { post, jobs } = setup();
      const answer = await post(fields);
      expect(answer.statusCode).toBe(400);
      expect(answer.body).toEqual({ status: 'failed', message: `${field}: port must be a decimal number from 1 to 65535 without leading zeros (port 0 reaches nothing)` });
      expect(jobs.jobs.size).toBe(0);
    }
  });

  it.each<[string, RegExp]>([
    ['http:///service.example.com/hook', /^service: must start with http:\/\/ or https:\/\/ and then the host, with exactly two slashes/],
    ['http:/service.example.com/hook', /^service: must start with http:\/\/ or https:\/\//],
    ['http://evil.invalid\\@service.example.com/', /^service: must not contain a backslash/],
    [' https://service.example.com/hook', /^service: must not contain whitespace or control characters/],
    ['https://service.example.com/ho\tok', /^service: must not contain whitespace or control characters/],
    ['http://\u2460\u2461\u2466.0.0.1/', /^service: must be ASCII/],
    ['http://127%2E0%2E0%2E1/', /^service: host must not be percent-encoded/],
    ['http://0x7f.1/', /^service: host "0x7f\.1" must be written "127\.0\.0\.1"/],
    ['https://service.example.com/a/../hook', /^service: path must not hold "\." or "\.\." segments/],
  ])('a URL parsers read differently (%j) is a 400 naming the field and the rule, before the egress policy is asked', async (url, message) => {
    const asked: string[] = [];
    const { post, jobs } = setup({ refuse: async (u) => void asked.push(u) });
    const answer = await post({ service: url });
    expect(answer.statusCode).toBe(400);
    expect(answer.body).toEqual({ status: 'failed', message: expect.stringMatching(message) });
    expect(asked).toEqual([]);
    expect(jobs.jobs.size).toBe(0);
  });

  it('a Latin-1 URL is judged the same once V8 has optimised URL.canParse, whose fast path misreads it', async () => {
    // Node 20: warm, URL.canParse reads a Latin-1 string as UTF-8 bytes. "Ã\u0080" is then "À".
    for (let i = 0; i < 20_000; i++) URL.canParse(`http://warm-${i}.example/`);
    const { post, jobs } = setup();
    for (const [url, message] of [
      ['http://\u00c3\u0080.example/', 'service must be an absolute http(s) URL with a host'],
      ['http://b\u00fccher.example/', expect.stringMatching(/^service: must be ASCII/)],
    ] as const) {
      const answer = await post({ service: url });
      expect({ url, answer: answer.body }).toEqual({ url, answer: { status: 'failed', message } });
    }
    expect(jobs.jobs.size).toBe(0);
  });

  it('a URL as every parser reads it is stored, shown and sent exactly as written', async () => {
    const { post, jobs, status } = setup();
    const url = 'HTTPS://Service.Example.COM:443/a%2Fb?q=%E2%82%AC#frag';
    const { job_id: jobId } = (await post({ service: url, callback: 'http://cb.example.com:8080' })).body as { job_id: string };
    expect((await jobs.getRequest(jobId))?.url).toBe(url);
    expect((await status(jobId)).body).toMatchObject({ service: url, callback: 'http://cb.example.com:8080' });
  });

  // toUpperCase() makes "poſt" (long s) POST and "optıons" (dotless i) OPTIONS.
  it.each(['po\u017ft', 'PO\u017fT', 'opt\u0131ons', 'OPT\u0131ONS', '\uff30\uff2f\uff33\uff34'])('methodtype %j, not ASCII, is a 400 even where toUpperCase() would make it a method', async (methodtype) => {
    const { post, jobs } = setup();
    const answer = await post({ service, methodtype });
    expect(answer).toMatchObject({ statusCode: 400, body: { status: 'failed', message: 'methodtype must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS' } });
    expect(jobs.jobs.size).toBe(0);
  });

  it('methodtype in mixed ASCII case is still the method', async () => {
    const { post, jobs } = setup();
    const { job_id: jobId } = (await post({ service, methodtype: 'pOsT' })).body as { job_id: string };
    expect((await jobs.get(jobId))?.methodtype).toBe('POST');
  });

  describe('a body that is not UTF-8', () => {
    /** The api function's answer to a body API Gateway hands over base64-encoded, as it does with bytes that are not text. */
    async function callWithBytes(deps: ApiDeps, request: Partial<ApiRequest>, bytes: Buffer) {
      const event = { ...gatewayEvent({ method: 'POST', path: '/webhook', query: {}, headers: {}, body: undefined, ...request }), body: bytes.toString('base64'), isBase64Encoded: true };
      const result = await apiFunction(() => deps)(event, testContext());
      return { statusCode: result.statusCode, body: result.body };
    }

    it.each([
      ['a stray 0xFF inside a string', Buffer.concat([Buffer.from('{"service":"https://service.example.com/hook","data":"a'), Buffer.from([0xff]), Buffer.from('"}')])],
      ['an overlong encoding of "/"', Buffer.concat([Buffer.from('{"service":"https://service.example.com'), Buffer.from([0xc0, 0xaf]), Buffer.from('hook"}')])],
      ['a lone surrogate encoded as UTF-8 (CESU)', Buffer.concat([Buffer.from('{"service":"https://service.example.com/hook","data":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')])],
      ['a truncated sequence at the end', Buffer.concat([Buffer.from('{"service":"https://service.example.com/hook"}'), Buffer.from([0xe2, 0x82])])],
    ])('%s is the seed\'s 422, not a repaired body that is accepted', async (_, bytes) => {
      const { deps, jobs, queue, alice } = setup();
      const authorization = `Basic ${Buffer.from(`${alice.client.clientId}:${alice.token}`).toString('base64')}`;
      for (const route of [{ method: 'POST', path: '/webhook' }, { method: 'GET', path: '/webhook' }, { method: 'GET', path: '/status' }]) {
        const answer = await callWithBytes(deps, { ...route, headers: { authorization } }, bytes);
        expect(answer).toEqual({ statusCode: 422, body: '{"message":"request type must be JSON","status":"failed"}' });
      }
      expect(jobs.jobs.size).toBe(0);
      expect(queue.sent).toEqual([]);
    });

    it('a base64-encoded body that is UTF-8 is read as the text it is', async () => {
      const { deps, jobs, alice } = setup();
      const body = JSON.stringify({ client_id: alice.client.clientId, verify_token: alice.token, service, data: 'caf\u00e9 \u{1F600}' });
      const answer = await callWithBytes(deps, {}, Buffer.from(body, 'utf8'));
      expect(answer.statusCode).toBe(202);
      const { job_id: jobId } = JSON.parse(String(answer.body)) as { job_id: string };
      expect((await jobs.getRequest(jobId))?.body).toBe('caf\u00e9 \u{1F600}');
    });
  });

  describe('credentials in the body and in Basic auth', () => {
    const basic = (id: string, token: string) => `Basic ${Buffer.from(`${id}:${token}`).toString('base64')}`;

    it('that disagree are a 401, whichever of the two is right', async () => {
      const { call, alice, bob, jobs } = setup();
      for (const [inBody, inHeader] of [
        [alice, bob],
        [bob, alice],
        [{ id: alice.client.clientId, token: alice.token }, { id: alice.client.clientId, token: bob.token }],
        [{ id: alice.client.clientId, token: bob.token }, { id: alice.client.clientId, token: alice.token }],
      ] as const) {
        const body = 'id' in inBody ? { client_id: inBody.id, verify_token: inBody.token } : { client_id: inBody.client.clientId, verify_token: inBody.token };
        const header = 'id' in inHeader ? basic(inHeader.id, inHeader.token) : basic(inHeader.client.clientId, inHeader.token);
        for (const [method, path] of [['POST', '/webhook'], ['GET', '/webhook']] as const) {
          const answer = await call({ method, path, headers: { authorization: header }, body: JSON.stringify({ ...body, service }) });
          expect(answer.statusCode).toBe(401);
          expect(JSON.stringify(answer.body)).toBe('{"status":"bad credentials"}');
        }
      }
      expect(jobs.jobs.size).toBe(0);
    });

    it('that agree are fine', async () => {
      const { call, alice } = setup();
      const answer = await call({ method: 'POST', path: '/webhook', headers: { authorization: basic(alice.client.clientId, alice.token) }, body: JSON.stringify({ client_id: alice.client.clientId, verify_token: alice.token, service }) });
      expect(answer.statusCode).toBe(202);
    });
  });
});
