/**
 * The contract's v1 table, end to end: `npm start`'s local stack, real HTTP targets and
 * callbacks on 127.0.0.1, each call as a client makes it (Basic or Bearer in Authorization).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { request, type Dispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demo, removeDir, startStack, startTarget, waitFor, type RunningStack, type Target } from './harness.ts';

let stack: RunningStack;
let service: Target;
let callbacks: Target;

const bearer = `Bearer ${demo.clientId}:${demo.verifyToken}`;
const basicAuth = `Basic ${Buffer.from(`${demo.clientId}:${demo.verifyToken}`).toString('base64')}`;

interface V1Answer {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

/** A v1 call as a client makes one; `authorization: null` sends none. */
async function v1(method: string, path: string, body?: unknown, headers: Record<string, string | null> = {}): Promise<V1Answer> {
  const sent: Record<string, string> = { authorization: bearer, 'content-type': 'application/json' };
  for (const [name, value] of Object.entries(headers)) {
    if (value === null) delete sent[name];
    else sent[name] = value;
  }
  const response = await request(`${stack.url}${path}`, {
    reset: true,
    method: method as Dispatcher.HttpMethod,
    headers: sent,
    body: body === undefined ? null : JSON.stringify(body),
  });
  const text = await response.body.text();
  const answerHeaders = Object.fromEntries(Object.entries(response.headers).map(([name, value]) => [name, String(value)]));
  return { status: response.statusCode, headers: answerHeaders, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

const job = (id: string) => v1('GET', `/v1/jobs/${id}`);
const waitForStatus = (id: string, done: (record: Record<string, unknown>) => boolean, what: string) =>
  waitFor(async () => {
    const answer = await job(id);
    return answer.status === 200 && done(answer.body) ? answer.body : undefined;
  }, 20_000, what);

/** Whether the local jobs queue holds nothing, visible, in flight or delayed: every message handled. */
async function jobsQueueEmpty(): Promise<boolean> {
  const file = JSON.parse(readFileSync(join(stack.dataDir, 'stack.json'), 'utf8')) as { sqsEndpoint: string };
  const sqs = new SQSClient({ region: 'us-east-1', endpoint: file.sqsEndpoint, useQueueUrlAsEndpoint: false, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  try {
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: 'waas-jobs' }));
    const { Attributes = {} } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'] }),
    );
    return Object.values(Attributes).every((count) => Number(count) === 0);
  } finally {
    sqs.destroy();
  }
}

beforeAll(async () => {
  stack = await startStack();
  service = await startTarget((request, response, count) => {
    if (request.url.startsWith('/flaky')) {
      // The first attempt of each job fails, the next succeeds.
      const key = String(request.headers['idempotency-key']);
      const seen = service.received.filter((r) => r.headers['idempotency-key'] === key).length;
      response.writeHead(seen === 1 ? 503 : 200, { 'content-type': 'text/plain' });
      return void response.end(seen === 1 ? 'try later' : `done after ${seen}`);
    }
    if (request.url.startsWith('/later')) {
      // Always busy, and says when to come back: a job waiting on its retry.
      response.writeHead(503, { 'retry-after': '2' });
      return void response.end('busy');
    }
    if (request.url.startsWith('/missing')) {
      response.writeHead(404);
      return void response.end('no such thing');
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ n: count, method: request.method, body: request.body }));
  });
  callbacks = await startTarget((_, response) => response.end('thanks'));
});

afterAll(async () => {
  await stack?.stop();
  await service?.close();
  await callbacks?.close();
  if (stack) removeDir(stack.dataDir);
});

describe('POST /v1/jobs and GET /v1/jobs/{job_id}', () => {
  it('runs a job submitted with a Bearer token and shows its record as GET /status does', async () => {
    const submitted = await v1('POST', '/v1/jobs', { url: `${service.url}/ok`, method: 'PUT', body: { order: 1 }, callback: `${callbacks.url}/cb` });
    expect(submitted.status).toBe(202);
    expect(submitted.body).toEqual({ job_id: expect.any(String), created: expect.any(String), status: 'accepted' });
    const id = String(submitted.body['job_id']);
    const record = await waitForStatus(id, (r) => r['status'] === 'completed' && r['notified'] === 'true', 'the job and its callback');
    expect(record).toMatchObject({ jobId: id, clientId: demo.clientId, methodtype: 'PUT', service: `${service.url}/ok`, attempts: 1 });
    const seen = service.received.find((r) => r.headers['idempotency-key'] === id);
    expect(seen).toMatchObject({ method: 'PUT', body: '{"order":1}' });
    // The seed's read of the same job agrees.
    const seed = await request(`${stack.url}/status?job_id=${id}`, { reset: true, headers: { authorization: basicAuth } });
    expect(await seed.body.json()).toEqual(record);
  });

  it('sends body_base64 as bytes', async () => {
    const bytes = Buffer.from('binary\u0000payload');
    const submitted = await v1('POST', '/v1/jobs', { url: `${service.url}/bytes`, body_base64: bytes.toString('base64') }, { authorization: basicAuth });
    const id = String(submitted.body['job_id']);
    await waitForStatus(id, (r) => r['status'] === 'completed', 'the bytes job');
    expect(service.received.find((r) => r.headers['idempotency-key'] === id)?.body).toBe(bytes.toString());
  });

  it('refuses a misspelt field with a problem that names it, and runs nothing', async () => {
    const before = service.received.length;
    const answer = await v1('POST', '/v1/jobs', { url: `${service.url}/ok`, calback: `${callbacks.url}/cb` });
    expect(answer.status).toBe(400);
    expect(answer.headers['content-type']).toBe('application/problem+json');
    expect(answer.body).toEqual({
      type: 'urn:waas:problem:invalid-request',
      title: 'The request is not valid',
      status: 400,
      detail: 'unknown field "calback" (did you mean "callback"?): v1 takes only the fields it documents',
    });
    expect(service.received.length).toBe(before);
  });

  it('answers a wrong method 405 with Allow, a bad token 401, an unknown job 404, each a problem', async () => {
    const wrong = await v1('PUT', '/v1/jobs');
    expect(wrong).toMatchObject({ status: 405, headers: { allow: 'POST, GET', 'content-type': 'application/problem+json' } });
    const denied = await v1('GET', '/v1/jobs', undefined, { authorization: `Bearer ${demo.clientId}:nope` });
    expect(denied).toMatchObject({ status: 401, headers: { 'www-authenticate': 'Bearer realm="waas"' }, body: { status: 401 } });
    const unknown = await job('0b7f6a9e-3c1d-4e2f-8a9b-1c2d3e4f5a6b');
    expect(unknown).toMatchObject({ status: 404, body: { type: 'urn:waas:problem:job-not-found' } });
  });
});

describe('POST /v1/jobs/batch', () => {
  it('accepts the good jobs and refuses the bad one alone, in order; the accepted ones run', async () => {
    const jobs = [{ url: `${service.url}/ok` }, { url: 'not a url' }, { url: `${service.url}/ok`, method: 'GET', idempotency_key: 'batch-1' }];
    const answer = await v1('POST', '/v1/jobs/batch', { jobs });
    expect(answer.status).toBe(200);
    const results = answer.body['results'] as Array<Record<string, unknown>>;
    expect(results.map((result) => ('error' in result ? (result['error'] as { status: number }).status : result['status']))).toEqual(['accepted', 400, 'accepted']);
    for (const result of [results[0], results[2]]) await waitForStatus(String(result?.['job_id']), (r) => r['status'] === 'completed', 'a batch job');
    // The key leads to the same job the next time.
    const again = await v1('POST', '/v1/jobs/batch', { jobs: [jobs[2]] });
    expect((again.body['results'] as unknown[])[0]).toEqual(results[2]);
  });
});

describe('GET /v1/jobs', () => {
  it('pages through the jobs newest first, each job once, and filters by status', async () => {
    const mine: string[] = [];
    for (let i = 0; i < 5; i++) {
      const answer = await v1('POST', '/v1/jobs', { url: `${service.url}/missing/${i}` });
      mine.push(String(answer.body['job_id']));
    }
    for (const id of mine) await waitForStatus(id, (r) => r['status'] === 'failed', 'a failing job');
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 50; page++) {
      const answer: V1Answer = await v1('GET', `/v1/jobs?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(answer.status).toBe(200);
      const jobs = answer.body['jobs'] as Array<Record<string, unknown>>;
      expect(jobs.length).toBeLessThanOrEqual(2);
      seen.push(...jobs.map((record) => String(record['jobId'])));
      cursor = answer.body['next_cursor'] as string | null;
      if (!cursor) break;
    }
    expect(new Set(seen).size).toBe(seen.length);
    // Newest first: the five just made lead, in reverse order of making.
    expect(seen.slice(0, 5)).toEqual([...mine].reverse());
    const failed = await v1('GET', '/v1/jobs?status=failed&limit=100');
    const failedIds = (failed.body['jobs'] as Array<Record<string, unknown>>).map((record) => record['jobId']);
    expect(failedIds).toEqual(expect.arrayContaining(mine));
    expect((failed.body['jobs'] as Array<Record<string, unknown>>).every((record) => record['status'] === 'failed')).toBe(true);
  });

  it('refuses a cursor it did not give', async () => {
    const answer = await v1('GET', '/v1/jobs?cursor=bm90LWEtY3Vyc29y');
    expect(answer).toMatchObject({ status: 400, body: { detail: expect.stringMatching(/^cursor: /) } });
  });
});

describe('GET /v1/jobs/{job_id}/attempts', () => {
  it('keeps every attempt with its answer, oldest first', async () => {
    const submitted = await v1('POST', '/v1/jobs', { url: `${service.url}/flaky` });
    const id = String(submitted.body['job_id']);
    await waitForStatus(id, (r) => r['status'] === 'completed', 'the flaky job');
    const answer = await v1('GET', `/v1/jobs/${id}/attempts`);
    expect(answer.status).toBe(200);
    const attempts = answer.body['attempts'] as Array<Record<string, unknown>>;
    expect(attempts.map((attempt) => [attempt['attempt'], attempt['statusCode'], attempt['body']])).toEqual([
      [1, 503, 'try later'],
      [2, 200, 'done after 2'],
    ]);
    for (const attempt of attempts) expect(attempt).toMatchObject({ started: expect.any(String), durationMs: expect.any(Number), headers: expect.any(Object) });
  });
});

describe('DELETE /v1/jobs/{job_id}', () => {
  it('cancels a job waiting on a retry: no attempt after the answer, no callback, and the record stays cancelled', async () => {
    const submitted = await v1('POST', '/v1/jobs', { url: `${service.url}/later`, callback: `${callbacks.url}/cancelled`, max_attempts: 10 });
    const id = String(submitted.body['job_id']);
    await waitForStatus(id, (r) => r['status'] === 'running' && r['attempts'] === 1, 'the first attempt');
    const cancelled = await v1('DELETE', `/v1/jobs/${id}`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ jobId: id, status: 'cancelled', notified: 'n/a' });
    const attemptsThen = service.received.filter((r) => r.headers['idempotency-key'] === id).length;
    // Its retry message comes back within two seconds or so, finds the job cancelled, and is gone.
    await waitFor(async () => ((await jobsQueueEmpty()) ? true : undefined), 20_000, 'the jobs queue to drain');
    expect(service.received.filter((r) => r.headers['idempotency-key'] === id).length).toBe(attemptsThen);
    expect(callbacks.received.some((r) => r.url === '/cancelled')).toBe(false);
    expect((await job(id)).body).toMatchObject({ status: 'cancelled' });
    // Final now: a second cancel is refused.
    expect(await v1('DELETE', `/v1/jobs/${id}`)).toMatchObject({ status: 409, body: { type: 'urn:waas:problem:job-is-final' } });
  });
});

describe('POST /v1/jobs/{job_id}/replay', () => {
  it('runs the same request again as a new job and leaves the old one as it was', async () => {
    const submitted = await v1('POST', '/v1/jobs', { url: `${service.url}/missing/replayed`, method: 'PATCH', headers: { 'X-Order': '9' }, body: 'again' });
    const id = String(submitted.body['job_id']);
    const old = await waitForStatus(id, (r) => r['status'] === 'failed', 'the job to fail');
    const replayed = await v1('POST', `/v1/jobs/${id}/replay`);
    expect(replayed.status).toBe(202);
    expect(replayed.body).toMatchObject({ status: 'accepted', replay_of: id });
    const newId = String(replayed.body['job_id']);
    expect(newId).not.toBe(id);
    await waitForStatus(newId, (r) => r['status'] === 'failed', 'the replay to run');
    const calls = service.received.filter((r) => r.url === '/missing/replayed');
    expect(calls.map((r) => [r.method, r.headers['x-order'], r.body, r.headers['idempotency-key']])).toEqual([
      ['PATCH', '9', 'again', id],
      ['PATCH', '9', 'again', newId],
    ]);
    expect((await job(id)).body).toEqual(old);
  });
});
